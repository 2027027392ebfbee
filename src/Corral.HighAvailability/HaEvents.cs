using Microsoft.Extensions.Logging;

namespace Corral.HighAvailability;

/// <summary>The event ids of HA's decisions, so that operators and tests can find them in any log sink.</summary>
public static class HaEvents
{
    public static readonly EventId SelfFence = new(1001, "SelfFence");
    public static readonly EventId Isolated = new(1002, "Isolated");
    public static readonly EventId Rejoined = new(1003, "Rejoined");
    public static readonly EventId HostUnleased = new(1010, "HostUnleased");
    public static readonly EventId HostIsolated = new(1011, "HostIsolated");
    public static readonly EventId HostBack = new(1012, "HostBack");
    public static readonly EventId PowerFenced = new(1013, "PowerFenced");
    public static readonly EventId HostFenced = new(1014, "HostFenced");
}
