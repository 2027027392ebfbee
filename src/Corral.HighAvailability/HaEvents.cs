using Microsoft.Extensions.Logging;

namespace Corral.HighAvailability;

/// <summary>The event ids of HA's decisions, so that operators and tests can find them in any log sink.</summary>
public static class HaEvents
{
    public static readonly EventId SelfFence = new(1001, "SelfFence");
    public static readonly EventId Isolated = new(1002, "Isolated");
    public static readonly EventId Rejoined = new(1003, "Rejoined");
    public static readonly EventId WatchdogArmed = new(1004, "WatchdogArmed");
    public static readonly EventId WatchdogDisarmed = new(1005, "WatchdogDisarmed");
    public static readonly EventId AgentSilent = new(1006, "AgentSilent");
    public static readonly EventId AgentBack = new(1007, "AgentBack");
    public static readonly EventId WatchdogLeftToFire = new(1008, "WatchdogLeftToFire");
    public static readonly EventId AgentFirstReport = new(1009, "AgentFirstReport");
    public static readonly EventId HostUnleased = new(1010, "HostUnleased");
    public static readonly EventId HostIsolated = new(1011, "HostIsolated");
    public static readonly EventId HostBack = new(1012, "HostBack");
    public static readonly EventId PowerFenced = new(1013, "PowerFenced");
    public static readonly EventId HostFenced = new(1014, "HostFenced");
    public static readonly EventId MasterSilent = new(1015, "MasterSilent");
    public static readonly EventId MasterFenced = new(1016, "MasterFenced");
    public static readonly EventId StatefileUnreachable = new(1017, "StatefileUnreachable");
    public static readonly EventId StatefileReachable = new(1018, "StatefileReachable");
    public static readonly EventId HaViewChanged = new(1019, "HaViewChanged");
    public static readonly EventId HaConfigurationUnread = new(1020, "HaConfigurationUnread");
    public static readonly EventId FenceDaemonTold = new(1021, "FenceDaemonTold");
}
