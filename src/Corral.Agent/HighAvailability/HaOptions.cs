using Corral.HighAvailability;

namespace Corral.Agent.HighAvailability;

/// <summary>High availability's timing (section <c>Corral:Ha</c>). See docs/ha.md for why each is safe.</summary>
public sealed class HaOptions
{
    /// <summary>How often each host writes its storage heartbeat, and the master and self-fence look.</summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// A storage heartbeat that has not moved for this long (twice the interval) counts as stopped. The wait starts when
    /// the master sees the lease gone, by which time a dead host's heartbeat has already stopped: the host writes it
    /// only while its lease is safe.
    /// </summary>
    public TimeSpan HeartbeatStaleAfter { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// What the master adds, after it sees a host's liveness lease gone, before it treats the host as fenced: the host
    /// itself stopped its VMs before its lease could expire; this covers the kill taking effect and clock rates.
    /// </summary>
    public TimeSpan FenceMargin { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How often the self-fence checks the lease.</summary>
    public TimeSpan SelfFenceCheck { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>The lab's script (<c>./lab</c>), for hosts whose power-on mode is the lab's power switch.</summary>
    public string? LabScript { get; set; }

    /// <summary>The recovery's waits, as the engine takes them.</summary>
    public HaTimings Timings => new() { HeartbeatStaleAfter = HeartbeatStaleAfter, FenceMargin = FenceMargin };
}
