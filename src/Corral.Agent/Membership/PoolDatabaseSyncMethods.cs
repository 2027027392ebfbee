using Corral.Api.Dispatch;
using Corral.PoolDatabase;
using Corral.PoolDatabase.Etcd;
using Corral.PoolDatabase.Etcd.Maintenance;
using Corral.PoolDatabase.Etcd.Tls;
using Microsoft.Extensions.Options;

namespace Corral.Agent.Membership;

/// <summary>
/// <c>pool.sync_database</c> ("forcibly synchronise the database now"), which XenCenter calls after changing HA
/// priorities and VMs' start order: xapi pushes its database to every host that answers. The pool database is etcd,
/// whose writes are on a quorum of members before they are acknowledged; what is left to wait for is every member
/// that answers having applied them, so the call returns once each member's revision has reached the pool database's
/// revision at the call (a member that does not answer is down, and catches up from the others when it is back, as an
/// offline XenServer host gets the database when it rejoins).
/// </summary>
public sealed class PoolDatabaseSyncMethods(IPoolDatabase database, IOptions<EtcdOptions> etcd, TimeProvider time,
    ILogger<PoolDatabaseSyncMethods> logger) : IApiMethodProvider
{
    /// <summary>The agent's own way to the pool database (its member first, or the pool's when it runs none), and its certificate.</summary>
    private IEnumerable<string> Endpoints => etcd.Value.Endpoints.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private EtcdTlsFiles? Tls => etcd.Value.CertificateDirectory.Length > 0 ? new EtcdTlsFiles(etcd.Value.CertificateDirectory) : null;

    private static readonly TimeSpan MemberLimit = TimeSpan.FromSeconds(10);
    private static readonly EventId Synced = new(1571, "PoolDatabaseSynced");

    public void Register(ApiRegistry registry) => registry.Implement("pool.sync_database", async (_, _, ct) =>
    {
        await SyncAsync(ct);
        return null;
    });

    private async Task SyncAsync(CancellationToken cancellationToken)
    {
        var revision = await database.GetRevisionAsync(cancellationToken);
        var members = await MemberEndpointsAsync(cancellationToken);
        var behind = new List<string>();
        foreach (var endpoint in members.Values)
        {
            if (!await ReachesAsync(endpoint, revision, cancellationToken))
            {
                behind.Add(endpoint);
            }
        }

        logger.LogInformation(Synced, "pool.sync_database: {Synced} of {Members} etcd member(s) hold revision {Revision}{Unreachable}", members.Count - behind.Count,
            members.Count, revision, behind.Count == 0 ? "" : $"; not answering: {string.Join(", ", behind)}");
    }

    private async Task<IReadOnlyDictionary<ulong, string>> MemberEndpointsAsync(CancellationToken cancellationToken)
    {
        Exception? last = null;
        foreach (var endpoint in Endpoints)
        {
            try
            {
                using var maintenance = new EtcdMemberMaintenance(endpoint, Tls);
                return await maintenance.MemberEndpointsAsync(cancellationToken);
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
            {
                last = ex;
            }
        }

        throw new InvalidOperationException("no etcd member of the pool answers", last);
    }

    /// <summary>True once the member has applied <paramref name="revision"/>; false if it does not answer in time.</summary>
    private async Task<bool> ReachesAsync(string endpoint, long revision, CancellationToken cancellationToken)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(MemberLimit);
        try
        {
            using var maintenance = new EtcdMemberMaintenance(endpoint, Tls);
            while ((await maintenance.StatusAsync(limit.Token)).Revision < revision)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(50), time, limit.Token);
            }

            return true;
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            logger.LogDebug(ex, "pool.sync_database: etcd member {Endpoint} did not show revision {Revision}", endpoint, revision);
            return false;
        }
    }
}
