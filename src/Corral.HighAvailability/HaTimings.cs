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
    /// (its new leader extends every lease by an election timeout). Whole seconds (etcd's unit).
    /// </summary>
    public TimeSpan LeaseTtl { get; init; } = TimeSpan.FromSeconds(4);

    /// <summary>
    /// How often the liveness lease's keepalives go. Often, so that a host that stalls keeps nearly all of its TTL:
    /// its lease outlives a stall of <see cref="StallToRideOut"/> however the stall falls between two keepalives.
    /// </summary>
    public TimeSpan KeepAliveInterval { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// The longest stall of a whole host (a kernel or hypervisor hang, a storage-induced freeze of every process) that
    /// HA rides out: no self-fence, no watchdog reset, no fence by the master or by the survivors, the VMs running on
    /// with the same processes. A longer stall may be fenced (safely: the host reset or powered off before its VMs
    /// restart elsewhere). The lease, the watchdog and the survivors' windows are checked against it.
    /// </summary>
    public TimeSpan StallToRideOut { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>
    /// What a host takes off its lease's TTL before it stops counting on the lease (its safe time: the last
    /// acknowledged keepalive's send time + TTL − this), so that it never counts on a lease the etcd leader, whose clock
    /// may run a little faster, has already expired.
    /// </summary>
    public TimeSpan LeaseSafetyMargin { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// How often each host writes its storage heartbeat: often, because a survivor judging a silent master counts from
    /// the last write it saw, so this adds to the master's recovery (<see cref="MasterHeartbeatStillFor"/>).
    /// </summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// The master's side: a host's storage heartbeat that has stood still this long, as the master watched it, counts as
    /// stopped. Longer than <see cref="OwnHeartbeatWindow"/> plus the time a host takes to kill its VMs (its wait for the
    /// agent's word included), or failing that to be reset by its watchdog.
    /// </summary>
    public TimeSpan HeartbeatStaleAfter { get; init; } = TimeSpan.FromSeconds(7);

    /// <summary>
    /// The host's side: a host without a lease it can count on keeps its VMs (it is isolated, not dead) only while its
    /// own storage heartbeat keeps landing: the last write that succeeded began less than this long ago.
    /// </summary>
    public TimeSpan OwnHeartbeatWindow { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>How often a host checks whether it must fence itself.</summary>
    public TimeSpan SelfFenceCheck { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// The fence daemon's wait for the agent's word before it kills for a lease it can no longer count on while its
    /// heartbeat does not land: a host thawing from a stall has both out of date until its first keepalive after the
    /// thaw is acknowledged, and an acknowledged keepalive proves the lease never expired (etcd does not revive one),
    /// so nobody can have declared the host dead. No word within this, or a lease known lost, and the VMs die.
    /// </summary>
    public TimeSpan ReportGrace { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>How long a self-fence may take to end the VMs' processes (SIGKILL, then their exit seen).</summary>
    public TimeSpan KillGrace { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// The host's watchdog: armed while HA is on, petted by the fence daemon (corral-fenced) every
    /// <see cref="SelfFenceCheck"/> while it is healthy and no VM it has killed is still alive. A daemon that dies or
    /// hangs, a host frozen whole, or VMs that outlive their kill: the watchdog resets the machine this long after the
    /// last pet. So a host that stalls this long with HA on is reset: the price of a frozen host being safe without a
    /// fence agent. Longer than <see cref="StallToRideOut"/>. Whole seconds (the Linux watchdog's unit).
    /// </summary>
    public TimeSpan WatchdogTimeout { get; init; } = TimeSpan.FromSeconds(4);

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
    /// probe over the management network. A master stalled for <see cref="StallToRideOut"/> fails the probes that
    /// began during its stall, and answers the one after; two probe intervals more cover the probe it thaws during.
    /// </summary>
    public TimeSpan MasterUnreachableFor => StallToRideOut + 2 * ProbeInterval;

    /// <summary>
    /// The survivors' fence of a silent master: how long its storage heartbeat must have stood still, as the survivor
    /// read it. A master stalled for <see cref="StallToRideOut"/> wrote last up to a heartbeat interval before its
    /// stall, writes again as it thaws (its writer's tick is overdue, and its lease still safe), and the survivor reads
    /// that within a probe interval; one heartbeat interval more is slack. Only a stall longer than the one HA rides
    /// out leaves it still this long. Power fencing makes a longer wait unnecessary for safety: the master is off
    /// before anything restarts.
    /// </summary>
    public TimeSpan MasterHeartbeatStillFor => StallToRideOut + 2 * HeartbeatInterval + ProbeInterval;

    /// <summary>How long a VM that could not be placed waits before it is tried again (and a fence agent that failed).</summary>
    public TimeSpan RetryUnplaced { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How often the master recomputes <c>ha_plan_exists_for</c>.</summary>
    public TimeSpan PlanRefresh { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>What is wrong with this budget, each naming its settings; empty when it is safe to use.</summary>
    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        BasicProblems(problems);
        LeaseProblems(problems);
        FenceProblems(problems);
        StallProblems(problems);
        return problems;
    }

    private void BasicProblems(List<string> problems)
    {
        if (HeartbeatInterval <= TimeSpan.Zero || SelfFenceCheck <= TimeSpan.Zero || KillGrace < TimeSpan.Zero || FenceMargin < TimeSpan.Zero
            || ReportGrace < TimeSpan.Zero)
        {
            problems.Add("HeartbeatInterval and SelfFenceCheck must be positive, KillGrace, FenceMargin and ReportGrace not negative");
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
    }

    private void LeaseProblems(List<string> problems)
    {
        if (LeaseTtl < TimeSpan.FromSeconds(2) || LeaseTtl.Ticks % TimeSpan.TicksPerSecond != 0)
        {
            problems.Add($"LeaseTtl ({LeaseTtl.TotalSeconds} s) must be whole seconds (etcd's unit), at least 2 s");
        }

        if (LeaseSafetyMargin <= TimeSpan.Zero || LeaseSafetyMargin >= LeaseTtl / 2)
        {
            problems.Add($"LeaseSafetyMargin ({LeaseSafetyMargin.TotalSeconds} s) must be positive and under half of LeaseTtl ({(LeaseTtl / 2).TotalSeconds} s): "
                + "a host must not count on a lease its etcd leader may have expired");
        }

        if (KeepAliveInterval < TimeSpan.FromMilliseconds(50) || KeepAliveInterval > LeaseTtl / 4)
        {
            problems.Add($"KeepAliveInterval ({KeepAliveInterval.TotalSeconds} s) must be at least 0.05 s and at most a quarter of LeaseTtl ({(LeaseTtl / 4).TotalSeconds} s): "
                + "a lease must stay safe past one lost keepalive");
        }
    }

    private void FenceProblems(List<string> problems)
    {
        if (OwnHeartbeatWindow < 2 * HeartbeatInterval)
        {
            problems.Add($"OwnHeartbeatWindow ({OwnHeartbeatWindow.TotalSeconds} s) must be at least twice HeartbeatInterval "
                + $"({HeartbeatInterval.TotalSeconds} s): one late heartbeat write must not make an isolated host kill its VMs");
        }

        var hostDone = OwnHeartbeatWindow + SelfFenceCheck + ReportGrace + (KillGrace > WatchdogTimeout ? KillGrace : WatchdogTimeout);
        if (HeartbeatStaleAfter <= hostDone)
        {
            problems.Add($"HeartbeatStaleAfter ({HeartbeatStaleAfter.TotalSeconds} s) must exceed OwnHeartbeatWindow + SelfFenceCheck + ReportGrace + the longer of KillGrace and WatchdogTimeout "
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
    }

    private void StallProblems(List<string> problems)
    {
        if (StallToRideOut < TimeSpan.Zero)
        {
            problems.Add("StallToRideOut must not be negative");
        }

        if (WatchdogTimeout <= StallToRideOut + SelfFenceCheck)
        {
            problems.Add($"WatchdogTimeout ({WatchdogTimeout.TotalSeconds} s) must exceed StallToRideOut + SelfFenceCheck ({(StallToRideOut + SelfFenceCheck).TotalSeconds} s): "
                + "the watchdog, which counts through a stall, would reset a host stalled no longer than HA rides out");
        }

        var leaseLeft = LeaseTtl - KeepAliveInterval - LeaseSafetyMargin;
        if (leaseLeft < StallToRideOut)
        {
            problems.Add($"LeaseTtl - KeepAliveInterval - LeaseSafetyMargin ({leaseLeft.TotalSeconds} s) must be at least StallToRideOut ({StallToRideOut.TotalSeconds} s): "
                + "the liveness lease of a host stalled no longer than HA rides out would expire, and the host be fenced");
        }
    }
}
