using Corral.Agent.Hosting;
using Corral.Agent.Vms;
using Corral.HighAvailability;
using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.Extensions.Options;

namespace Corral.Agent.HighAvailability;

/// <summary>
/// With HA on, a host that can no longer count on its liveness lease (<see cref="ILease.SafeUntil"/>) is isolated,
/// not dead, while its storage heartbeat keeps landing: its VMs run on, and the master, seeing the heartbeat move,
/// leaves them alone. When its own heartbeat stops landing (<see cref="HaTimings.OwnHeartbeatWindow"/>), or it has been
/// isolated for <see cref="HaTimings.IsolationPowerOffAfter"/> when that is set, it stops every VM at once and without
/// asking anyone, and stops beating: only then may the master restart them elsewhere. QEMU cannot check a fencing
/// token on each disk write, so the only safe copy is no copy: the processes are killed (on real hardware the watchdog
/// would then reset the machine). Once the pool database is reachable again the VMs are recorded halted, unless the
/// master has already placed them elsewhere.
/// </summary>
public sealed class SelfFence(
    IPoolDatabase database,
    HostLiveness liveness,
    VmSupervisor supervisor,
    StorageHeartbeat heartbeat,
    TimeProvider clock,
    IOptions<HaOptions> options,
    ILogger<SelfFence> logger) : BackgroundService
{
    private readonly HashSet<string> _fencedVmUuids = new(StringComparer.Ordinal);
    private readonly FenceGrace _grace = new();
    private bool _isolationLogged;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await liveness.Registered.WaitAsync(stoppingToken);
        var timings = options.Value.Timings;
        long? unsafeSince = null;
        while (!stoppingToken.IsCancellationRequested)
        {
            var lease = liveness.Lease;
            var leaseSafe = liveness.LeaseSafe();
            var wasUnsafeFor = unsafeSince is { } before ? clock.GetElapsedTime(before) : TimeSpan.Zero;
            unsafeSince = leaseSafe ? null : unsafeSince ?? clock.GetTimestamp();
            var isolatedFor = unsafeSince is { } since ? clock.GetElapsedTime(since) : TimeSpan.Zero;
            var lands = SelfFencePolicy.HeartbeatLands(heartbeat.SinceOwnBeatBegan, timings);
            var due = SelfFencePolicy.MustKill(heartbeat.HaEnabled, leaseSafe, lands, isolatedFor, timings, supervisor.AllProcesses.Count);
            if (_grace.Carry(due, lease?.Id, MonotonicTime.Now, timings))
            {
                heartbeat.Fenced();
                await FenceAsync(lease, SelfFencePolicy.Reason(leaseSafe, lands, isolatedFor));
            }
            else if (!leaseSafe && heartbeat.HaEnabled && supervisor.AllProcesses.Count > 0 && !_isolationLogged)
            {
                _isolationLogged = true;
                logger.LogWarning(HaEvents.Isolated, "Isolated: the liveness lease cannot be counted on but the storage heartbeat lands; {Count} VM(s) keep running",
                    supervisor.AllProcesses.Count);
            }

            if (leaseSafe && _isolationLogged)
            {
                _isolationLogged = false;
                logger.LogInformation(HaEvents.Rejoined, "Lease safe again after {Seconds:0.0} s isolated; the VMs ran on", wasUnsafeFor.TotalSeconds);
            }

            if (_fencedVmUuids.Count > 0 && leaseSafe)
            {
                await RecordHaltedAsync(stoppingToken);
            }

            await Task.Delay(timings.SelfFenceCheck, clock, stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    private async Task FenceAsync(ILease? lease, string why)
    {
        // Incoming migration copies too: after the switchover one runs the guest, and its migration may commit (the
        // source can still reach etcd) while this host cannot, making it the VM's only copy until HA restarts it.
        var processes = supervisor.AllProcesses;
        logger.LogCritical(HaEvents.SelfFence, "Self-fencing: the liveness lease {Lease} cannot be counted on (safe until {Ago:0.0} s ago) and {Why}; killing {Count} VM(s)",
            lease?.Id.ToString("x", System.Globalization.CultureInfo.InvariantCulture) ?? "(none)", lease is null ? null : (MonotonicTime.Now - lease.SafeUntil).TotalSeconds, why, processes.Count);
        foreach (var process in processes)
        {
            try
            {
                // Never through QMP or etcd: SIGKILL, which cannot block.
                process.KillImmediately();
                _fencedVmUuids.Add(process.VmUuid);
            }
            catch (Exception ex)
            {
                logger.LogError(ex, "Could not kill QEMU {Pid} of VM {Vm} while self-fencing", process.ProcessId, process.VmUuid);
            }
        }

        // Until the processes are gone the supervisor still lists them; wait (briefly) rather than kill them twice.
        await Task.WhenAny(Task.WhenAll(processes.Select(p => p.Exited)), Task.Delay(TimeSpan.FromSeconds(1)));
    }

    private async Task RecordHaltedAsync(CancellationToken cancellationToken)
    {
        foreach (var uuid in _fencedVmUuids.ToList())
        {
            try
            {
                if (await database.FindByUuidAsync(XenClasses.VM, uuid, cancellationToken) is { } vm)
                {
                    // Killed by this host, not asked to stop: HA restarts it if it protects it (unless the master has
                    // already declared this host fenced and placed the VM elsewhere, which MarkHaltedAsync sees).
                    await supervisor.MarkHaltedAsync(vm.Ref, cancellationToken, haRestart: true);
                }

                _fencedVmUuids.Remove(uuid);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                logger.LogDebug(ex, "Could not yet record fenced VM {Vm} as halted", uuid);
                return;
            }
        }
    }
}
