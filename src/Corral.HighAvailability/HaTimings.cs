namespace Corral.HighAvailability;

/// <summary>
/// HA's timing budget in one place: the agent fills it from its options (<c>Corral:Ha</c>), the simulation from its
/// scenario, and both run the same checks (<see cref="Problems"/>) before using it. docs/ha.md gives the safety
/// argument these inequalities carry.
/// </summary>
public sealed record HaTimings
{
    /// <summary>
    /// The TTL of each host's liveness lease in etcd: a host whose keepalives stop (dead, cut off the pool database,
    /// or stalled) is seen not live this long after its last one landed, more when etcd's leader changed meanwhile
    /// (its new leader extends every lease by an election timeout). Whole seconds (etcd's unit). Keepalives go every
    /// quarter of it.
    /// </summary>
    public TimeSpan LeaseTtl { get; init; } = TimeSpan.FromSeconds(4);

    /// <summary>
    /// What a host takes off its lease's TTL before it stops counting on the lease (its safe time: the last
    /// acknowledged keepalive's send time + TTL − this), so that it never counts on a lease the etcd leader, whose clock
    /// may run a little faster, has already expired.
    /// </summary>
    public TimeSpan LeaseSafetyMargin { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>How often each host writes its storage heartbeat (and reads everyone's).</summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// The master's side: a host's storage heartbeat that has stood still this long, as the master watched it, counts as
    /// stopped. Longer than <see cref="OwnHeartbeatWindow"/> plus the time a host takes to kill its VMs, or failing that
    /// to be reset by its watchdog.
    /// </summary>
    public TimeSpan HeartbeatStaleAfter { get; init; } = TimeSpan.FromSeconds(6);

    /// <summary>
    /// The host's side: a host without a lease it can count on keeps its VMs (it is isolated, not dead) only while its
    /// own storage heartbeat keeps landing: the last write that succeeded began less than this long ago.
    /// </summary>
    public TimeSpan OwnHeartbeatWindow { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>How often a host checks whether it must fence itself.</summary>
    public TimeSpan SelfFenceCheck { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>How long a self-fence may take to end the VMs' processes (SIGKILL, then their exit seen).</summary>
    public TimeSpan KillGrace { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// The host's watchdog: armed while HA is on, petted by the fence daemon (corral-fenced) every
    /// <see cref="SelfFenceCheck"/> while it is healthy and no VM it has killed is still alive. A daemon that dies or
    /// hangs, a host frozen whole, or VMs that outlive their kill: the watchdog resets the machine this long after the
    /// last pet. So a host that stalls this long with HA on is reset: the price of a frozen host being safe without a
    /// fence agent. Whole seconds (the Linux watchdog's unit).
    /// </summary>
    public TimeSpan WatchdogTimeout { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>What the master adds, after it sees a host's lease gone, before it treats the host as fenced.</summary>
    public TimeSpan FenceMargin { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// The isolation response: null keeps an isolated host's VMs running for as long as it stays isolated (the
    /// default, as vSphere's "leave powered on"); a time makes the host power its VMs off after that long isolated, so
    /// that HA restarts them where the pool can reach them ("power off and restart VMs").
    /// </summary>
    public TimeSpan? IsolationPowerOffAfter { get; init; }

    /// <summary>
    /// How often every host reads the other hosts' storage heartbeats, and how often a host that is not the master
    /// probes the master over the management network (<see cref="MasterFence"/>), each probe waiting at most this long.
    /// </summary>
    public TimeSpan ProbeInterval { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// The survivors' fence of a silent master (<see cref="MasterFence"/>): how long the master must have failed every
    /// probe over the management network. The host's own watchdog timeout: no shorter stall is fenced by it.
    /// </summary>
    public TimeSpan MasterUnreachableFor => WatchdogTimeout;

    /// <summary>
    /// The survivors' fence of a silent master: how long its storage heartbeat must have stood still, as the survivor
    /// read it. Its last write may have come up to a heartbeat interval before it stopped, so only this long after that
    /// write is a host frozen from then on sure to have been reset by its own watchdog already: the survivors never
    /// fence a stall the host would have lived through.
    /// </summary>
    public TimeSpan MasterHeartbeatStillFor => WatchdogTimeout + HeartbeatInterval;

    /// <summary>How long a VM that could not be placed waits before it is tried again (and a fence agent that failed).</summary>
    public TimeSpan RetryUnplaced { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How often the master recomputes <c>ha_plan_exists_for</c>.</summary>
    public TimeSpan PlanRefresh { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>What is wrong with this budget, each naming its settings; empty when it is safe to use.</summary>
    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (HeartbeatInterval <= TimeSpan.Zero || SelfFenceCheck <= TimeSpan.Zero || KillGrace < TimeSpan.Zero || FenceMargin < TimeSpan.Zero)
        {
            problems.Add("HeartbeatInterval and SelfFenceCheck must be positive, KillGrace and FenceMargin not negative");
        }

        if (LeaseTtl < TimeSpan.FromSeconds(2) || LeaseTtl.Ticks % TimeSpan.TicksPerSecond != 0)
        {
            problems.Add($"LeaseTtl ({LeaseTtl.TotalSeconds} s) must be whole seconds (etcd's unit), at least 2 s");
        }

        if (LeaseSafetyMargin <= TimeSpan.Zero || LeaseSafetyMargin >= LeaseTtl / 2)
        {
            problems.Add($"LeaseSafetyMargin ({LeaseSafetyMargin.TotalSeconds} s) must be positive and under half of LeaseTtl ({(LeaseTtl / 2).TotalSeconds} s): "
                + "a host must not count on a lease its etcd leader may have expired, and its lease must stay safe past one lost keepalive (sent every quarter of the TTL)");
        }

        if (OwnHeartbeatWindow < 2 * HeartbeatInterval)
        {
            problems.Add($"OwnHeartbeatWindow ({OwnHeartbeatWindow.TotalSeconds} s) must be at least twice HeartbeatInterval "
                + $"({HeartbeatInterval.TotalSeconds} s): one late heartbeat write must not make an isolated host kill its VMs");
        }

        var hostDone = OwnHeartbeatWindow + SelfFenceCheck + (KillGrace > WatchdogTimeout ? KillGrace : WatchdogTimeout);
        if (HeartbeatStaleAfter <= hostDone)
        {
            problems.Add($"HeartbeatStaleAfter ({HeartbeatStaleAfter.TotalSeconds} s) must exceed OwnHeartbeatWindow + SelfFenceCheck + the longer of KillGrace and WatchdogTimeout "
                + $"({hostDone.TotalSeconds} s): the master may count a host's heartbeat stopped only once the host has had the time to kill its VMs, or failing that to be reset by its watchdog");
        }

        if (WatchdogTimeout < TimeSpan.FromSeconds(1) || WatchdogTimeout.Ticks % TimeSpan.TicksPerSecond != 0 || WatchdogTimeout < 4 * SelfFenceCheck)
        {
            problems.Add($"WatchdogTimeout ({WatchdogTimeout.TotalSeconds} s) must be whole seconds, at least 1 s and at least four SelfFenceChecks "
                + $"({(4 * SelfFenceCheck).TotalSeconds} s): a watchdog petted less often than that resets a healthy host");
        }

        var daemonGone = HeartbeatInterval + WatchdogTimeout;
        if (HeartbeatStaleAfter <= daemonGone)
        {
            problems.Add($"HeartbeatStaleAfter ({HeartbeatStaleAfter.TotalSeconds} s) must exceed HeartbeatInterval + WatchdogTimeout ({daemonGone.TotalSeconds} s): "
                + "a fence daemon that dies right after a heartbeat must have had its host reset before the master counts that heartbeat stopped");
        }

        if (ProbeInterval <= TimeSpan.Zero || ProbeInterval > HeartbeatInterval || 4 * ProbeInterval > WatchdogTimeout)
        {
            problems.Add($"ProbeInterval ({ProbeInterval.TotalSeconds} s) must be positive, at most HeartbeatInterval ({HeartbeatInterval.TotalSeconds} s) "
                + $"and at most a quarter of WatchdogTimeout ({(WatchdogTimeout / 4).TotalSeconds} s): a master's silence is measured in probes");
        }

        if (IsolationPowerOffAfter is { } after && after < TimeSpan.Zero)
        {
            problems.Add("IsolationPowerOffAfter must not be negative (leave it unset to keep isolated VMs running)");
        }

        return problems;
    }
}
