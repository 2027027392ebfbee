using System.Diagnostics;
using Corral.Agent.Vms;
using Corral.Api.Migration;
using Corral.Leases.Sanlock;
using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Corral.Agent.Storage;

/// <summary>
/// Joins the lockspaces of the shared SRs plugged here (<see cref="VmLeases.JoinPluggedAsync"/>), and every few seconds
/// gives the VMs that run here and are not migrating their lease back exclusive
/// (<see cref="VmLeases.KeepExclusiveAsync"/>): a live migration leaves its destination (after a commit) or its source
/// (after an abort) holding the lease shared until the other end's QEMU is gone.
/// </summary>
public sealed class VmLeaseKeeper(VmLeases leases, VmSupervisor supervisor, IPoolDatabase database, IOptions<SanlockOptions> options,
    ILogger<VmLeaseKeeper> logger) : BackgroundService
{
    public static readonly TimeSpan Period = TimeSpan.FromSeconds(2);

    /// <summary>How often the plugged SRs are looked at for a lockspace not joined yet.</summary>
    public static readonly TimeSpan JoinPeriod = TimeSpan.FromSeconds(4);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.Value.Enabled)
        {
            return;
        }

        using var timer = new PeriodicTimer(Period);
        Task? joining = null;
        var lastJoin = 0L;
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            if (joining is null || (joining.IsCompleted && Stopwatch.GetElapsedTime(lastJoin) > JoinPeriod))
            {
                lastJoin = Stopwatch.GetTimestamp();
                // In the background: joining takes seconds; an SR plugged later is joined on a later pass.
                joining = JoinAsync(stoppingToken);
            }

            try
            {
                await leases.PublishJoinedAsync(stoppingToken);
                foreach (var process in supervisor.All)
                {
                    await leases.KeepExclusiveAsync(process, NotMigratingAsync, stoppingToken);

                    async Task<bool> NotMigratingAsync(CancellationToken cancellationToken) =>
                        await database.FindByUuidAsync(XenClasses.VM, process.VmUuid, cancellationToken) is { } vm
                        && await MigrationRecord.ReadAsync(database, vm.Ref, cancellationToken) is null;
                }
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                logger.LogDebug(ex, "Could not look at the VMs' leases this time");
            }
        }
    }

    private async Task JoinAsync(CancellationToken cancellationToken)
    {
        try
        {
            await leases.JoinPluggedAsync(cancellationToken);
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            logger.LogWarning(ex, "Could not join the VM leases of this host's shared SRs yet");
        }
    }
}
