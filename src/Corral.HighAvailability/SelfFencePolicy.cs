namespace Corral.HighAvailability;

/// <summary>
/// The host's half of HA, as rules the agent and the simulation share. A host may count on a lease it holds only while
/// it is not known lost and before its safe time (last acknowledged keepalive's send time + TTL − margin).
/// <para>
/// Isolated is not dead: a host whose lease cannot be counted on (its management network or the pool database out of
/// reach) but whose storage heartbeat still lands keeps its VMs, and keeps beating, so the master leaves them alone.
/// Only when its own heartbeat stops landing (storage out of reach too, or the host stalled), or when the isolation
/// response says so, does it kill them; it then stops beating until it holds a safe lease again, which is what lets
/// the master restart them elsewhere.
/// </para>
/// </summary>
public static class SelfFencePolicy
{
    /// <summary>Both times on the holder's own monotonic clock: no wall clock, and no other host's clock, is involved.</summary>
    public static bool LeaseSafe(bool lost, TimeSpan safeUntil, TimeSpan now) => !lost && now < safeUntil;

    /// <summary>
    /// Whether the host's own heartbeat still lands: its last successful write began (by this host's monotonic clock)
    /// less than <see cref="HaTimings.OwnHeartbeatWindow"/> ago. A write that stalled and completed late counts from
    /// when it began, so a host thawing from a freeze never counts as beating.
    /// </summary>
    public static bool HeartbeatLands(TimeSpan? sinceLastBeatBegan, HaTimings timings) =>
        sinceLastBeatBegan is { } age && age >= TimeSpan.Zero && age < timings.OwnHeartbeatWindow;

    /// <summary>
    /// With HA on and the lease not safe, every VM process is killed at once, without asking anyone, when the host's
    /// heartbeat no longer lands or it has been isolated for as long as the isolation response allows.
    /// </summary>
    public static bool MustKill(bool haEnabled, bool leaseSafe, bool heartbeatLands, TimeSpan isolatedFor, HaTimings timings, int runningVms) =>
        runningVms > 0 && MustFence(haEnabled, leaseSafe, heartbeatLands, isolatedFor, timings);

    /// <summary>
    /// Whether the host must be fenced (its VMs killed, its heartbeat stopped), VMs or not: whoever on the host kills
    /// them first, the heartbeat must stop all the same, so that the master may restart them.
    /// </summary>
    public static bool MustFence(bool haEnabled, bool leaseSafe, bool heartbeatLands, TimeSpan isolatedFor, HaTimings timings) =>
        haEnabled && !leaseSafe && (!heartbeatLands || (timings.IsolationPowerOffAfter is { } after && isolatedFor >= after));

    /// <summary>Why a fence was carried out, as the fence daemon and the agent log it.</summary>
    public static string Reason(bool leaseSafe, bool heartbeatLands, TimeSpan isolatedFor) =>
        leaseSafe ? "the fence fell due under an earlier lease, which expired"
        : heartbeatLands ? $"isolated for {isolatedFor.TotalSeconds:0.0} s (the isolation response)" : "its storage heartbeat no longer lands";

    /// <summary>
    /// The storage heartbeat is written while the lease is safe, and while isolated as long as it has kept landing and
    /// the host has not fenced itself: it stops no later than the VMs do.
    /// </summary>
    public static bool MayBeat(bool haEnabled, bool statefileKnown, bool leaseSafe, bool fenced, bool heartbeatLands) =>
        haEnabled && statefileKnown && (leaseSafe || (!fenced && heartbeatLands));
}
