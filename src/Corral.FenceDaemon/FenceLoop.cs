using Corral.HighAvailability;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Corral.FenceDaemon;

/// <summary>
/// Every <see cref="HaTimings.SelfFenceCheck"/>: one round of the <see cref="HostFence"/> over the host's VM processes;
/// kills them all (SIGKILL, nothing that can block) when it must; arms, pets or disarms the watchdog. It holds the pets
/// while killed VMs are still alive, so that the watchdog resets the machine if they outlive its timeout; if this loop
/// itself stops, so do the pets.
/// </summary>
public sealed class FenceLoop(FenceState state, VmProcesses vms, Watchdog watchdog, TimeProvider clock, ILogger<FenceLoop> logger) : BackgroundService
{
    private bool _agentSilentLogged;
    private bool _killLogged;
    private bool _leftToFireLogged;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(state.Timings.SelfFenceCheck, clock);
        try
        {
            do
            {
                timer.Period = state.Timings.SelfFenceCheck;
                RunRound();
            }
            while (await timer.WaitForNextTickAsync(stoppingToken).AsTask().ContinueWith(t => t.IsCompletedSuccessfully && t.Result, TaskScheduler.Default));
        }
        finally
        {
            // A clean stop (systemd stopping the daemon, HA or not): the watchdog must not reset a healthy host.
            watchdog.Disarm();
        }
    }

    private void RunRound()
    {
        var running = vms.Running();
        var round = state.Round(running.Count, out var agentSilentFor);
        var timings = state.Timings;
        LogAgent(round, agentSilentFor, timings);
        if (round.Kill)
        {
            Kill(running, round.Why);
        }
        else
        {
            _killLogged = false;
        }

        Watch(round, timings);
    }

    private void Kill(IReadOnlyList<(string VmUuid, int Pid)> running, string? why)
    {
        if (!_killLogged)
        {
            _killLogged = true;
            logger.LogCritical(HaEvents.SelfFence, "Self-fencing: the liveness lease cannot be counted on and {Why}; killing {Count} VM(s): {Vms}",
                why, running.Count, string.Join(", ", running.Select(r => $"{r.VmUuid} (pid {r.Pid})")));
        }

        foreach (var (uuid, pid) in running)
        {
            try
            {
                VmProcesses.Kill(uuid, pid);
            }
            catch (IOException ex)
            {
                logger.LogError(ex, "Could not kill QEMU {Pid} of VM {Vm} while self-fencing", pid, uuid);
            }
        }
    }

    private void Watch(FenceRound round, HaTimings timings)
    {
        if (!round.Armed)
        {
            watchdog.Disarm();
            _leftToFireLogged = false;
            return;
        }

        try
        {
            watchdog.Arm(timings.WatchdogTimeout);
            if (round.Pet)
            {
                watchdog.Pet();
                _leftToFireLogged = false;
            }
            else if (!_leftToFireLogged)
            {
                _leftToFireLogged = true;
                logger.LogCritical(HaEvents.WatchdogLeftToFire, "Killed VM processes are still alive: no pets until they are gone; the watchdog resets the host after {Seconds} s",
                    timings.WatchdogTimeout.TotalSeconds);
            }
        }
        catch (IOException ex)
        {
            logger.LogError(ex, "The watchdog cannot be armed or petted: the fence no longer covers this host's death or hang");
        }
    }

    private void LogAgent(FenceRound round, TimeSpan? silentFor, HaTimings timings)
    {
        var silent = silentFor is { } s && s > timings.OwnHeartbeatWindow;
        if (silent && !_agentSilentLogged && round.Armed)
        {
            _agentSilentLogged = true;
            logger.LogWarning(HaEvents.AgentSilent, "The agent has not reported for {Seconds:0.0} s: the fence goes on with its last word; the VMs keep running while the heartbeat lands",
                silentFor!.Value.TotalSeconds);
        }
        else if (!silent && _agentSilentLogged)
        {
            _agentSilentLogged = false;
            logger.LogInformation(HaEvents.AgentBack, "The agent reports again");
        }
    }
}
