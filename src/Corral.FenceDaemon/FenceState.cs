using Corral.HighAvailability;

namespace Corral.FenceDaemon;

/// <summary>
/// The daemon's one <see cref="HostFence"/> and what the agent last said beside it (where the heartbeat goes), shared
/// by the agent's channel, the fence loop and the heartbeat writer under one lock.
/// </summary>
public sealed class FenceState(TimeProvider clock)
{
    private readonly Lock _lock = new();
    private readonly HostFence _fence = new();
    private FenceReportMessage? _last;
    private FenceRound _round;

    public TimeSpan Now => MonotonicClock.Now(clock);

    /// <summary>Where this host's heartbeat file is, and whether the last round allows writing it.</summary>
    public (string Directory, string HostUuid)? BeatTarget
    {
        get
        {
            lock (_lock)
            {
                return _round.MayBeat && _last is { StatefileDirectory: { } directory } last ? (directory, last.HostUuid) : null;
            }
        }
    }

    public HaTimings Timings
    {
        get
        {
            lock (_lock)
            {
                return _fence.Timings ?? new HaTimings();
            }
        }
    }

    /// <summary>Takes an agent's report; answers with the fence's state.</summary>
    public FenceStatusMessage Report(FenceReportMessage report)
    {
        lock (_lock)
        {
            var now = Now;
            _last = report;
            var safeUntil = TimeSpan.FromTicks(report.LeaseSafeUntilNanoseconds / 100);
            _fence.Reported(now, new AgentReport(report.HaEnabled, report.StatefileDirectory is not null, safeUntil, report.Timings.ToTimings(), report.LeaseId));
            var since = _fence.SinceBeatBegan(now);
            return new FenceStatusMessage(since is { } s ? s.Ticks * 100 : null, _fence.Fenced, _round.Armed);
        }
    }

    public FenceRound Round(int runningVms, out TimeSpan? agentSilentFor)
    {
        lock (_lock)
        {
            var now = Now;
            agentSilentFor = _fence.AgentSilentFor(now);
            return _round = _fence.Round(now, runningVms);
        }
    }

    public void BeatLanded(TimeSpan began)
    {
        lock (_lock)
        {
            _fence.BeatLanded(began);
        }
    }
}
