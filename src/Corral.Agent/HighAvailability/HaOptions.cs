using Corral.HighAvailability;

namespace Corral.Agent.HighAvailability;

/// <summary>
/// High availability's settings (section <c>Corral:Ha</c>): the timing budget, whose defaults and meaning are
/// <see cref="HaTimings"/>'s and which is checked at start (<see cref="HaTimings.Problems"/>), and how this host's
/// fence is held. See docs/ha.md for why each is safe.
/// </summary>
public sealed class HaOptions
{
    private static readonly HaTimings Defaults = new();

    /// <inheritdoc cref="HaTimings.LeaseTtl"/>
    public TimeSpan LeaseTtl { get; set; } = Defaults.LeaseTtl;

    /// <inheritdoc cref="HaTimings.KeepAliveInterval"/>
    public TimeSpan KeepAliveInterval { get; set; } = Defaults.KeepAliveInterval;

    /// <inheritdoc cref="HaTimings.StallToRideOut"/>
    public TimeSpan StallToRideOut { get; set; } = Defaults.StallToRideOut;

    /// <inheritdoc cref="HaTimings.ReportGrace"/>
    public TimeSpan ReportGrace { get; set; } = Defaults.ReportGrace;

    /// <inheritdoc cref="HaTimings.LeaseSafetyMargin"/>
    public TimeSpan LeaseSafetyMargin { get; set; } = Defaults.LeaseSafetyMargin;

    /// <inheritdoc cref="HaTimings.HeartbeatInterval"/>
    public TimeSpan HeartbeatInterval { get; set; } = Defaults.HeartbeatInterval;

    /// <inheritdoc cref="HaTimings.HeartbeatStaleAfter"/>
    public TimeSpan HeartbeatStaleAfter { get; set; } = Defaults.HeartbeatStaleAfter;

    /// <inheritdoc cref="HaTimings.OwnHeartbeatWindow"/>
    public TimeSpan OwnHeartbeatWindow { get; set; } = Defaults.OwnHeartbeatWindow;

    /// <inheritdoc cref="HaTimings.KillGrace"/>
    public TimeSpan KillGrace { get; set; } = Defaults.KillGrace;

    /// <inheritdoc cref="HaTimings.FenceMargin"/>
    public TimeSpan FenceMargin { get; set; } = Defaults.FenceMargin;

    /// <inheritdoc cref="HaTimings.SelfFenceCheck"/>
    public TimeSpan SelfFenceCheck { get; set; } = Defaults.SelfFenceCheck;

    /// <inheritdoc cref="HaTimings.WatchdogTimeout"/>
    public TimeSpan WatchdogTimeout { get; set; } = Defaults.WatchdogTimeout;

    /// <inheritdoc cref="HaTimings.IsolationPowerOffAfter"/>
    public TimeSpan? IsolationPowerOffAfter { get; set; }

    /// <inheritdoc cref="HaTimings.ProbeInterval"/>
    public TimeSpan ProbeInterval { get; set; } = Defaults.ProbeInterval;

    /// <summary>
    /// The socket of this host's fence daemon (corral-fenced), which writes the storage heartbeat, self-fences and
    /// pets the watchdog independently of the agent, so that an agent that crashes or restarts disturbs nothing.
    /// Unset, the agent writes the heartbeat itself and its death stops it: HA then needs a fence agent on every host
    /// to stay safe (docs/ha.md), and says so when it is enabled.
    /// </summary>
    public string? FenceSocket { get; set; }

    /// <summary>
    /// Where a statefile volume (HA's heartbeat on an NFS or iSCSI SR) is exported on this host as a file, by
    /// qemu-storage-daemon over FUSE, for this agent and the fence daemon (which must share this host's mounts).
    /// </summary>
    public string StatefileMountDirectory { get; set; } = "/run/corral/ha";

    /// <summary>The lab's script (<c>./lab</c>), for hosts whose power-on mode is the lab's power switch.</summary>
    public string? LabScript { get; set; }

    /// <summary>The timing budget, as the engine, the self-fence and the heartbeat take it.</summary>
    public HaTimings Timings => new()
    {
        LeaseTtl = LeaseTtl,
        LeaseSafetyMargin = LeaseSafetyMargin,
        KeepAliveInterval = KeepAliveInterval,
        StallToRideOut = StallToRideOut,
        ReportGrace = ReportGrace,
        HeartbeatInterval = HeartbeatInterval,
        HeartbeatStaleAfter = HeartbeatStaleAfter,
        OwnHeartbeatWindow = OwnHeartbeatWindow,
        SelfFenceCheck = SelfFenceCheck,
        KillGrace = KillGrace,
        WatchdogTimeout = WatchdogTimeout,
        FenceMargin = FenceMargin,
        IsolationPowerOffAfter = IsolationPowerOffAfter,
        ProbeInterval = ProbeInterval,
    };
}
