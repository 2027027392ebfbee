namespace Corral.HighAvailability;

/// <summary>
/// The host's half of HA, as rules the agent and the simulation share. A host may count on a lease it holds only while
/// it is not known lost and before its safe time (last acknowledged keepalive's send time + TTL − margin).
/// </summary>
public static class SelfFencePolicy
{
    public static bool LeaseSafe(bool lost, DateTime safeUntilUtc, DateTime nowUtc) => !lost && nowUtc < safeUntilUtc;

    /// <summary>With HA on and the lease not safe, every VM process is killed at once, without asking anyone.</summary>
    public static bool MustKill(bool haEnabled, bool leaseSafe, int runningVms) => haEnabled && !leaseSafe && runningVms > 0;

    /// <summary>The storage heartbeat is written only while the lease is safe, so it stops no later than the VMs do.</summary>
    public static bool MayBeat(bool haEnabled, bool statefileKnown, bool leaseSafe) => haEnabled && statefileKnown && leaseSafe;
}
