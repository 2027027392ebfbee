using Corral.Api.Methods;
using Corral.Api.Pool;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Agent.Hosting;

/// <summary>
/// Elects the pool master through etcd: the master holds <c>/corral/master</c> on its liveness lease, so the key
/// vanishes when the master's host dies and a survivor claims it — no home-made consensus. The winner records itself
/// as <c>pool.master</c>. A designated successor (<c>pool.designate_new_master</c>) gets a head start.
/// </summary>
public sealed class MasterElection(IPoolDatabase database, HostIdentity identity, HostLiveness liveness, MasterState state, ILogger<MasterElection> logger)
    : BackgroundService
{
    private const string MasterKey = PoolMethods.MasterKey;
    private const string DesignatedKey = PoolMethods.DesignatedKey;

    /// <summary>How long other hosts hold back while a designated successor claims the master key.</summary>
    private static readonly TimeSpan DesignatedHeadStart = TimeSpan.FromSeconds(2);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await liveness.Registered.WaitAsync(stoppingToken);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await CampaignOnceAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                logger.LogWarning(ex, "Master election round failed; retrying");
            }

            await Task.Delay(TimeSpan.FromMilliseconds(250), stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    private async Task CampaignOnceAsync(CancellationToken cancellationToken)
    {
        var lease = liveness.Lease;
        if (lease is null)
        {
            state.Set(null);
            return;
        }

        // The store's revision is read before the holder, and the watch below starts after it: a change of holder
        // between the read and the watch (the holder dying) is then delivered, not missed for good.
        var revision = await database.GetRevisionAsync(cancellationToken);
        var holder = await database.Leases.GetValueAsync(MasterKey, cancellationToken);
        if (holder is null)
        {
            var designated = await database.Leases.GetValueAsync(DesignatedKey, cancellationToken);
            if (designated is not null && designated != identity.Ref)
            {
                await Task.Delay(DesignatedHeadStart, cancellationToken);
            }

            if (await database.Leases.TryClaimAsync(lease, MasterKey, identity.Ref, cancellationToken))
            {
                logger.LogInformation("This host is now the pool master");
                await database.Leases.DeleteIfValueAsync(DesignatedKey, identity.Ref, cancellationToken);
                await RecordMasterAsync(cancellationToken);
            }

            revision = await database.GetRevisionAsync(cancellationToken);
            holder = await database.Leases.GetValueAsync(MasterKey, cancellationToken);
        }

        state.Set(holder);
        if (holder == identity.Ref)
        {
            // Keep pool.master right even if an operator's transition rewrote it.
            await RecordMasterAsync(cancellationToken);
        }

        // Wait for a change of the master key (its holder dying, or a handover) or for our lease to go.
        using var wake = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, lease.Lost);
        try
        {
            await foreach (var change in database.Leases.WatchPrefixAsync(MasterKey, revision, wake.Token))
            {
                if (change.Key == MasterKey)
                {
                    break;
                }
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            state.Set(null);
        }
    }

    private async Task RecordMasterAsync(CancellationToken cancellationToken)
    {
        var pools = await database.GetAllAsync(XenClasses.Pool, cancellationToken);
        var pool = pools.Count > 0 ? pools[0] : null;
        if (pool is null || pool.Get(XenApi.Pool.Master) == identity.Ref)
        {
            return;
        }

        await database.UpdateAsync([(XenClasses.Pool, pool.Ref)], (objs, tx) =>
        {
            var p = objs[0].Clone();
            p.Set(XenApi.Pool.Master, identity.Ref);
            tx.Update(p);
        }, cancellationToken);
    }
}
