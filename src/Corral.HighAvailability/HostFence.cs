namespace Corral.HighAvailability;

/// <summary>What the agent last told its host's fence daemon; the daemon keeps it when the agent dies.</summary>
/// <param name="HaEnabled">Whether HA is on in the pool, as the agent last read it.</param>
/// <param name="StatefileKnown">Whether the agent knows where this host's heartbeat goes.</param>
/// <param name="LeaseSafeUntil">Until when the agent may count on its liveness lease, on this host's monotonic clock.</param>
/// <param name="Timings">The pool's timing budget, as the agent was configured with it.</param>
/// <param name="LeaseId">The liveness lease the safe time is of (null: not said, by an older agent).</param>
public sealed record AgentReport(bool HaEnabled, bool StatefileKnown, TimeSpan LeaseSafeUntil, HaTimings Timings, long? LeaseId = null);

/// <summary>One round of the host's fence: what to do now.</summary>
/// <param name="MayBeat">Whether the storage heartbeat may be written (<see cref="SelfFencePolicy.MayBeat"/>).</param>
/// <param name="Kill">Whether every VM process must be killed now (<see cref="SelfFencePolicy.MustKill"/>).</param>
/// <param name="Armed">Whether the watchdog is armed (HA on).</param>
/// <param name="Pet">Whether to pet the watchdog: armed, and no VM it has killed is still alive.</param>
/// <param name="Why">Why the VMs must be killed, when they must.</param>
public readonly record struct FenceRound(bool MayBeat, bool Kill, bool Armed, bool Pet, string? Why);

/// <summary>
/// The host's fence as a pure state machine over this host's monotonic time, run by the fence daemon (corral-fenced)
/// and by the HA simulation. It outlives the agent: what the agent last reported stands when the agent dies, its lease
/// then runs out like any other, and the host counts as isolated (its heartbeat lands, its VMs run on) rather than
/// dead. It kills the VMs only by <see cref="SelfFencePolicy"/>'s rules, and pets the watchdog except while VMs it
/// killed are still alive: if they outlive the watchdog's timeout, it resets the machine. A daemon that dies or hangs
/// stops petting too.
/// </summary>
public sealed class HostFence
{
    private AgentReport? _report;
    private TimeSpan? _lastReportAt;
    private TimeSpan? _lastBeatBegan;
    private TimeSpan? _unsafeSince;
    private TimeSpan? _killSince;
    private readonly FenceGrace _grace = new();
    private bool _fenced;

    /// <summary>The budget in force: the agent's last report's.</summary>
    public HaTimings? Timings => _report?.Timings;

    /// <summary>How long since the agent last reported (null: never, since this daemon started).</summary>
    public TimeSpan? AgentSilentFor(TimeSpan now) => _lastReportAt is { } at ? now - at : null;

    /// <summary>Whether the host has killed its VMs and stopped beating since it last held a safe lease.</summary>
    public bool Fenced => _fenced;

    /// <summary>How long ago the last heartbeat write that succeeded began, on this host's monotonic clock.</summary>
    public TimeSpan? SinceBeatBegan(TimeSpan now) => _lastBeatBegan is { } began ? now - began : null;

    public void Reported(TimeSpan now, AgentReport report)
    {
        _report = report;
        _lastReportAt = now;
    }

    /// <summary>A heartbeat write that began at <paramref name="began"/> completed.</summary>
    public void BeatLanded(TimeSpan began)
    {
        if (_lastBeatBegan is not { } last || began > last)
        {
            _lastBeatBegan = began;
        }
    }

    /// <summary>One round, with the number of VM processes alive on this host now.</summary>
    public FenceRound Round(TimeSpan now, int runningVms)
    {
        if (_report is not { } report)
        {
            return default;
        }

        var timings = report.Timings;
        var leaseSafe = now < report.LeaseSafeUntil;
        if (leaseSafe)
        {
            _fenced = false;
        }

        _unsafeSince = leaseSafe ? null : _unsafeSince ?? now;
        var lands = SelfFencePolicy.HeartbeatLands(SinceBeatBegan(now), timings);
        var isolatedFor = _unsafeSince is { } since ? now - since : TimeSpan.Zero;
        var fence = _grace.Carry(SelfFencePolicy.MustFence(report.HaEnabled, leaseSafe, lands, isolatedFor, timings), report.LeaseId, now, timings);
        var kill = fence && runningVms > 0;
        _fenced |= fence;
        if (kill)
        {
            _killSince ??= now;
        }
        else if (runningVms == 0)
        {
            _killSince = null;
        }

        // From the kill until the processes are gone, no pets: if they are not gone within the watchdog's timeout, the
        // machine is reset. Once they are, the pets resume and nothing happens.
        var killing = _killSince is not null && runningVms > 0;
        var why = fence ? SelfFencePolicy.Reason(leaseSafe, lands, isolatedFor) : null;
        return new FenceRound(
            SelfFencePolicy.MayBeat(report.HaEnabled, report.StatefileKnown, leaseSafe, _fenced, lands),
            kill,
            report.HaEnabled,
            report.HaEnabled && !killing,
            why);
    }
}
