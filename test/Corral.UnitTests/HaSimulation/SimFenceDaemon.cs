using Corral.HighAvailability;

namespace Corral.UnitTests.HaSimulation;

/// <summary>
/// corral-fenced on a simulated host, running the real <see cref="HostFence"/> on the host's clock: it takes the
/// agent's reports, writes the storage heartbeat every <see cref="HaTimings.HeartbeatInterval"/> while the fence allows
/// it, kills the host's VM processes when the fence says so, and pets the host's watchdog. It dies with the host's
/// power and with <c>kill-fenced</c>, not with the agent; a frozen host's daemon runs late, at thaw. The watchdog is
/// hardware: it keeps counting on a frozen host, and resets the host (power off, and on again after
/// <see cref="RebootAfter"/> unless something else powered it off meanwhile) when not petted for its timeout.
/// </summary>
public sealed class SimFenceDaemon(Simulation sim, SimHost host)
{
    /// <summary>How long a host reset by its watchdog takes to boot again.</summary>
    public static readonly TimeSpan RebootAfter = TimeSpan.FromSeconds(10);

    private static readonly TimeSpan WatchdogTick = TimeSpan.FromMilliseconds(100);

    private HostFence _fence = new();
    private int _epoch;
    private bool _up;
    private FenceRound _round;
    private TimeSpan? _watchdogTimeout;
    private TimeSpan _lastPet;
    private int _watchdogEpoch;

    public bool Running => _up && host.Powered && !host.Frozen;

    private TimeSpan Now => host.Clock.UtcNow - Simulation.Epoch;

    /// <summary>How long ago its last heartbeat write that landed began, as the agent learns it over the socket.</summary>
    public TimeSpan? SinceBeatBegan => _fence.SinceBeatBegan(Now);

    public void Start()
    {
        _up = true;
        _epoch++;
        _fence = new HostFence();
        _round = default;
        var timings = sim.Scenario.Timings;
        Loop(timings.SelfFenceCheck, Round, sim.Jitter(timings.SelfFenceCheck));
        Loop(timings.HeartbeatInterval, Beat, sim.Jitter(timings.HeartbeatInterval));
    }

    /// <summary>The daemon dies (SIGKILL, or with the host): an armed watchdog keeps counting.</summary>
    public void Stop(string why)
    {
        if (_up && why != "power off")
        {
            sim.Log(host.Name, $"fence daemon {why}");
        }

        _up = false;
        _epoch++;
    }

    /// <summary>The host lost power: its watchdog stops too.</summary>
    public void PowerOff()
    {
        Stop("power off");
        _watchdogTimeout = null;
        _watchdogEpoch++;
    }

    /// <summary>What FenceDaemonLink sends every SelfFenceCheck.</summary>
    public void Report(bool haEnabled, DateTime? leaseSafeUntilUtc, long? leaseId)
    {
        if (!Running)
        {
            return;
        }

        var safeUntil = leaseSafeUntilUtc is { } until ? until - Simulation.Epoch : TimeSpan.Zero;
        _fence.Reported(Now, new AgentReport(haEnabled, true, safeUntil, sim.Scenario.Timings, leaseId));
    }

    private void Round()
    {
        var running = host.Processes.Count + host.Incoming.Count(p => p.Value.Alive);
        var round = _round = _fence.Round(Now, running);
        if (round.Kill)
        {
            host.FenceKill("fence daemon", round.Why!);
        }

        if (!round.Armed)
        {
            _watchdogTimeout = null;
            _watchdogEpoch++;
            return;
        }

        if (_watchdogTimeout is null)
        {
            _watchdogTimeout = _fence.Timings!.WatchdogTimeout;
            _lastPet = sim.Now;
            WatchdogCount(++_watchdogEpoch);
        }

        if (round.Pet)
        {
            _lastPet = sim.Now;
        }
    }

    private void Beat()
    {
        // As HeartbeatWriter: by the last round's word, carrying on from the counter already there.
        var began = Now;
        if (_round.MayBeat && !host.StorageCut)
        {
            sim.Statefile[host.Name] = (sim.Statefile.TryGetValue(host.Name, out var last) ? last : 0) + 1;
            _fence.BeatLanded(began);
        }
    }

    /// <summary>The watchdog's own counting: hardware, so neither a freeze nor the daemon's death stops it.</summary>
    private void WatchdogCount(int epoch)
    {
        sim.After(WatchdogTick, () =>
        {
            if (epoch != _watchdogEpoch || _watchdogTimeout is not { } timeout || !host.Powered)
            {
                return;
            }

            if (sim.Now - _lastPet >= timeout)
            {
                sim.Log(host.Name, $"watchdog not petted for {timeout.TotalSeconds:0} s: resets the host");
                host.ResetByWatchdog(RebootAfter);
                return;
            }

            WatchdogCount(epoch);
        });
    }

    /// <summary>A timer of the daemon: stops with it, runs late on a frozen host.</summary>
    private void Loop(TimeSpan period, Action body, TimeSpan first)
    {
        var epoch = _epoch;
        void Tick()
        {
            if (epoch != _epoch || !host.Powered)
            {
                return;
            }

            if (host.Frozen)
            {
                host.DeferDaemon(Tick);
                return;
            }

            body();
            sim.After(host.Clock.ToSimulation(period), Tick);
        }

        sim.After(host.Clock.ToSimulation(first), Tick);
    }
}
