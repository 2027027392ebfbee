using System.Collections.Concurrent;
using Corral.Agent.Hosting;
using Corral.Hypervisor;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Agent.Vms;

/// <summary>
/// Writes what the guest agents of this host's VMs report into their VM_guest_metrics (<see cref="GuestMetricsFields"/>),
/// as xapi does from xenstore: only when something changed, so that a chatty guest does not flood the pool database,
/// and marks them no longer live when an agent falls silent.
/// </summary>
public sealed class GuestMetricsWriter(IPoolDatabase database, HostIdentity identity, ILogger<GuestMetricsWriter> logger)
{
    private static readonly EventId GuestToolsSilent = new(2250, nameof(GuestToolsSilent));

    private readonly ConcurrentDictionary<string, string> _lastFingerprint = new(StringComparer.Ordinal);

    /// <summary>The VM is gone from this host (stopped, or moved away): if it comes back, its first report is written at once.</summary>
    public void Forget(string vmRef) => _lastFingerprint.TryRemove(vmRef, out _);

    /// <summary>
    /// Writes the report when something other than the uptime and free space changed, or once a minute (see
    /// <see cref="GuestMetricsFields.Fingerprint"/>). A failed write is retried by the next report.
    /// </summary>
    public async Task UpdateAsync(string vmRef, GuestAgentReport report)
    {
        try
        {
            var fingerprint = GuestMetricsFields.Fingerprint(report);
            if (_lastFingerprint.TryGetValue(vmRef, out var last) && last == fingerprint)
            {
                return;
            }

            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            var ct = timeout.Token;
            var vm = await database.TryGetAsync(XenClasses.VM, vmRef, ct);
            if (vm is null)
            {
                return;
            }

            var existing = await database.TryGetAsync(XenClasses.VMGuestMetrics, vm.Get(XenApi.VM.GuestMetrics), ct);
            if (existing is null)
            {
                var tx = new PoolTransaction();
                var created = tx.Create(XenClasses.VMGuestMetricsSchema);
                GuestMetricsFields.Apply(created, report);
                var v = vm.Clone();
                v.Set(XenApi.VM.GuestMetrics, created.Ref);
                tx.Update(v);
                await database.CommitAsync(tx, ct);
            }
            else
            {
                await database.UpdateAsync([(XenClasses.VMGuestMetrics, existing.Ref)], (objs, tx) =>
                {
                    var g = objs[0].Clone();
                    GuestMetricsFields.Apply(g, report);
                    tx.Update(g);
                }, ct);
            }

            _lastFingerprint[vmRef] = fingerprint;
        }
        catch (Exception ex)
        {
            logger.LogDebug(ex, "Guest metrics update for {Vm} failed; the next report retries", vmRef);
        }
    }

    /// <summary>
    /// The guest agent of a VM that still runs here stopped answering: its guest metrics stay (the last addresses and OS
    /// are still the best known) but are no longer live, so clients show the tools as not responding and the operations
    /// that need them (clean shutdown, reboot) leave allowed_operations. The next report makes them live again.
    /// </summary>
    public async Task MarkSilentAsync(string vmRef)
    {
        Forget(vmRef);
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            var vm = await database.TryGetAsync(XenClasses.VM, vmRef, timeout.Token);
            if (vm is null || vm.Get(XenApi.VM.ResidentOn) != identity.Ref
                || await database.TryGetAsync(XenClasses.VMGuestMetrics, vm.Get(XenApi.VM.GuestMetrics), timeout.Token) is not { } gm)
            {
                return;
            }

            var g = gm.Clone();
            g.Set(XenApi.VMGuestMetrics.Live, false);
            var tx = new PoolTransaction();
            tx.Update(g);
            await database.CommitAsync(tx, timeout.Token);
            logger.LogInformation(GuestToolsSilent, "VM {Vm}: the guest agent stopped answering; its tools are no longer live", vm.Get(XenApi.VM.NameLabel));
        }
        catch (Exception ex)
        {
            logger.LogDebug(ex, "Guest metrics of {Vm} not marked silent; the next report rewrites them", vmRef);
        }
    }
}
