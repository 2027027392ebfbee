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

    /// <summary>Where this host's heartbeat goes (a file SR's directory, or a volume's slot), while the last round allows writing it.</summary>
    public BeatTarget? BeatTarget
    {
        get
        {
            lock (_lock)
            {
                return _round.MayBeat && _last is { } last && (last.StatefileDirectory is not null || last.StatefileVolume is not null)
                    ? new BeatTarget(last.StatefileDirectory, last.StatefileVolume, last.HostUuid)
                    : null;
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
            _fence.Reported(now, new AgentReport(report.HaEnabled, report.StatefileDirectory is not null || report.StatefileVolume is not null, safeUntil, report.Timings.ToTimings(), report.LeaseId));
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

/// <summary>This host's heartbeat: in a file SR's statefile directory, or in its slot of a statefile volume.</summary>
public sealed record BeatTarget(string? Directory, StatefileVolume? Volume, string HostUuid);
