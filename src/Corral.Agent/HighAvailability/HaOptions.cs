using Corral.HighAvailability;

namespace Corral.Agent.HighAvailability;

/// <summary>
/// High availability's timing (section <c>Corral:Ha</c>), checked at start (<see cref="HaTimings.Problems"/>). See
/// docs/ha.md for why each is safe.
/// </summary>
public sealed class HaOptions
{
    /// <summary>How often each host writes its storage heartbeat, and the master and self-fence look.</summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// A storage heartbeat that has not moved for this long, as the master read it, counts as stopped. Longer than
    /// <see cref="OwnHeartbeatWindow"/> + <see cref="SelfFenceCheck"/> + <see cref="KillGrace"/>: by then a host whose
    /// heartbeat stopped landing has killed its VMs. A dead host's heartbeat stopped with it, before the master saw its
    /// lease gone (TTL 5 s), so this does not delay its recovery.
    /// </summary>
    public TimeSpan HeartbeatStaleAfter { get; set; } = TimeSpan.FromSeconds(4);

    /// <summary>An isolated host (lease gone) keeps its VMs while its own heartbeat landed within this window.</summary>
    public TimeSpan OwnHeartbeatWindow { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How long a self-fence may take to end the VMs' processes.</summary>
    public TimeSpan KillGrace { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// What the master adds, after it sees a host's liveness lease gone, before it treats the host as fenced.
    /// </summary>
    public TimeSpan FenceMargin { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How often the self-fence checks the lease and the heartbeat.</summary>
    public TimeSpan SelfFenceCheck { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// The isolation response. Unset (the default): an isolated host's VMs run on for as long as it stays isolated, and
    /// it rejoins without disturbing them. Set: after this long isolated, the host powers its VMs off so that HA
    /// restarts them on hosts the pool can reach.
    /// </summary>
    public TimeSpan? IsolationPowerOffAfter { get; set; }

    /// <summary>The lab's script (<c>./lab</c>), for hosts whose power-on mode is the lab's power switch.</summary>
    public string? LabScript { get; set; }

    /// <summary>The timing budget, as the engine, the self-fence and the heartbeat take it.</summary>
    public HaTimings Timings => new()
    {
        HeartbeatInterval = HeartbeatInterval,
        HeartbeatStaleAfter = HeartbeatStaleAfter,
        OwnHeartbeatWindow = OwnHeartbeatWindow,
        SelfFenceCheck = SelfFenceCheck,
        KillGrace = KillGrace,
        FenceMargin = FenceMargin,
        IsolationPowerOffAfter = IsolationPowerOffAfter,
    };
}
