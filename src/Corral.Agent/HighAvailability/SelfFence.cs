using Corral.Agent.Hosting;
using Corral.Agent.Vms;
using Corral.HighAvailability;
using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.Extensions.Options;

namespace Corral.Agent.HighAvailability;

/// <summary>
/// With HA on, a host that can no longer count on its liveness lease stops every VM it runs, at once and without
/// asking anyone: the master may restart them elsewhere once the lease has expired, and this host's lease can be
/// relied on only until the send time of its last acknowledged keepalive plus the TTL, less a margin
/// (<see cref="ILease.SafeUntilUtc"/>). QEMU cannot check a fencing token on each disk write, so the only safe copy
/// is no copy: the processes are killed (on real hardware the watchdog would then reset the machine). Once the pool
/// database is reachable again the VMs are recorded halted, unless the master has already placed them elsewhere.
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

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await liveness.Registered.WaitAsync(stoppingToken).ConfigureAwait(false);
        while (!stoppingToken.IsCancellationRequested)
        {
            var lease = liveness.Lease;
            var leaseSafe = liveness.LeaseSafe(clock.GetUtcNow().UtcDateTime);
            if (SelfFencePolicy.MustKill(heartbeat.HaEnabled, leaseSafe, supervisor.AllProcesses.Count))
            {
                await FenceAsync(lease).ConfigureAwait(false);
            }

            if (_fencedVmUuids.Count > 0 && leaseSafe)
            {
                await RecordHaltedAsync(stoppingToken).ConfigureAwait(false);
            }

            await Task.Delay(options.Value.SelfFenceCheck, clock, stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default).ConfigureAwait(false);
        }
    }

    private async Task FenceAsync(ILease? lease)
    {
        // Incoming migration copies too: after the switchover one runs the guest, and its migration may commit (the
        // source can still reach etcd) while this host cannot, making it the VM's only copy until HA restarts it.
        var processes = supervisor.AllProcesses;
        logger.LogCritical("Self-fencing: the liveness lease {Lease} cannot be counted on (safe until {SafeUntil:O}); killing {Count} VM(s)",
            lease?.Id.ToString("x", System.Globalization.CultureInfo.InvariantCulture) ?? "(none)", lease?.SafeUntilUtc, processes.Count);
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
        await Task.WhenAny(Task.WhenAll(processes.Select(p => p.Exited)), Task.Delay(TimeSpan.FromSeconds(1))).ConfigureAwait(false);
    }

    private async Task RecordHaltedAsync(CancellationToken cancellationToken)
    {
        foreach (var uuid in _fencedVmUuids.ToList())
        {
            try
            {
                if (await database.FindByUuidAsync(XenClasses.VM, uuid, cancellationToken).ConfigureAwait(false) is { } vm)
                {
                    // Killed by this host, not asked to stop: HA restarts it if it protects it (unless the master has
                    // already declared this host fenced and placed the VM elsewhere, which MarkHaltedAsync sees).
                    await supervisor.MarkHaltedAsync(vm.Ref, cancellationToken, haRestart: true).ConfigureAwait(false);
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
