using System.Globalization;
using Corral.Api.Client;
using Corral.Api.Dispatch;
using Corral.Api.Pool;
using Corral.Api.Sessions;
using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Corral.Api.Methods;

/// <summary>
/// Pool membership and recovery with XenServer's messages: <c>pool.join</c>, <c>pool.eject</c>,
/// <c>pool.emergency_transition_to_master</c>, <c>pool.recover_slaves</c>, <c>pool.emergency_reset_master</c>, the
/// local logins they rely on, and Corral's own <c>pool.corral_admit_member</c> / <c>pool.corral_promote_member</c>
/// through which a master gives a joining host its place in the pool database.
/// </summary>
public sealed class PoolMembershipMethods(
    IPoolDatabase database,
    IPoolMembership membership,
    SessionService sessions,
    Placement placement,
    RemoteHosts remote,
    IOptions<ApiOptions> options,
    ILogger<PoolMembershipMethods> logger) : IApiMethodProvider
{
    private string ThisHost => options.Value.HostRef;

    public void Register(ApiRegistry registry)
    {
        registry.Implement("session.slave_local_login_with_password", (ctx, a, _) => Task.FromResult<object?>(sessions.LocalLogin((string)a[0]!, (string)a[1]!, ctx.RemoteAddress)));
        // Not in the published datamodel: xapi keeps slave_login internal to the pool, as Corral does.
        registry.AddExtension(new ApiMethod("session.slave_login", [new("host", FieldType.String), new("psecret", FieldType.String)],
            async (ctx, a, ct) => await sessions.SlaveLoginAsync((string)a[1]!, ctx.RemoteAddress, ct), RequiresSession: false));

        registry.Add("pool.join", async (_, a, ct) =>
        {
            await CheckCanJoinAsync(ct);
            await membership.JoinAsync((string)a[0]!, (string)a[1]!, (string)a[2]!, ct);
            return null;
        }, ("master_address", FieldType.String), ("master_username", FieldType.String), ("master_password", FieldType.String));

        registry.Add("pool.corral_admit_member", async (_, a, ct) =>
        {
            var hosts = await database.GetAllAsync(XenClasses.Host, ct);
            var admission = await membership.AdmitAsync((string)a[0]!, (string)a[1]!, (string)a[2]!, hosts.Count + 1, ct);
            return new Dictionary<string, object?>
            {
                ["role"] = admission.Role,
                ["member_id"] = admission.MemberId.ToString("x", CultureInfo.InvariantCulture),
                ["initial_cluster"] = admission.InitialCluster,
                ["endpoints"] = admission.Endpoints.Cast<object?>().ToList(),
                ["pool_secret"] = admission.PoolSecret,
                ["certificate"] = admission.Certificate,
                ["ca_certificate"] = admission.CaCertificate,
                ["ca_key"] = admission.CaKey,
            };
        }, ("member_name", FieldType.String), ("peer_url", FieldType.String), ("certificate_signing_request", FieldType.String));

        registry.Add("pool.corral_promote_member", async (_, a, ct) =>
        {
            if (!ulong.TryParse((string)a[0]!, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var id))
            {
                throw new XenApiException(ErrorCodes.InvalidValue, "member_id", (string)a[0]!);
            }

            await membership.PromoteAsync(id, ct);
            return null;
        }, ("member_id", FieldType.String));

        registry.Add("pool.eject", async (ctx, a, ct) =>
        {
            await EjectAsync(ctx.SessionRef, (string)a[0]!, ct);
            return null;
        }, ("host", FieldType.String));

        registry.Add("pool.emergency_transition_to_master", async (_, _, ct) =>
        {
            await membership.EmergencyTransitionToMasterAsync(ct);
            return null;
        });

        registry.Add("pool.emergency_reset_master", async (_, a, ct) =>
        {
            await membership.EmergencyResetMasterAsync((string)a[0]!, ct);
            return null;
        }, ("master_address", FieldType.String));

        registry.Add("pool.recover_slaves", async (_, _, ct) => await RecoverSlavesAsync(ct));
    }

    private async Task CheckCanJoinAsync(CancellationToken cancellationToken)
    {
        var hosts = await database.GetAllAsync(XenClasses.Host, cancellationToken);
        if (hosts.Any(h => h.Ref != ThisHost))
        {
            throw new XenApiException(ErrorCodes.JoiningHostCannotBeMasterOfOtherHosts);
        }

        var vms = await database.GetAllAsync(XenClasses.VM, cancellationToken);
        if (vms.Any(v => !v.Get(XenApi.VM.IsATemplate) && !v.Get(XenApi.VM.IsControlDomain) && v.Get(XenApi.VM.PowerState) is VmPowerState.Running or VmPowerState.Paused))
        {
            throw new XenApiException(ErrorCodes.JoiningHostCannotHaveRunningVms);
        }
    }

    private async Task EjectAsync(string sessionRef, string hostRef, CancellationToken cancellationToken)
    {
        var host = await database.GetArgumentAsync(XenClasses.Host, hostRef, cancellationToken);
        var pool = await GetPoolAsync(cancellationToken);
        if (pool?.Get(XenApi.Pool.HaEnabled) == true)
        {
            throw new XenApiException(ErrorCodes.HaIsEnabled);
        }

        if (pool?.Get(XenApi.Pool.Master) == hostRef)
        {
            throw new XenApiException(ErrorCodes.OperationNotAllowed, "Cannot eject the pool master; designate a new master first");
        }

        var vms = await database.GetAllAsync(XenClasses.VM, cancellationToken);
        if (vms.Any(v => v.Get(XenApi.VM.ResidentOn) == hostRef && v.Get(XenApi.VM.PowerState) != VmPowerState.Halted && !v.Get(XenApi.VM.IsControlDomain)))
        {
            throw new XenApiException(ErrorCodes.OperationNotAllowed, "VM resident on host");
        }

        if (hostRef != ThisHost)
        {
            // As xapi forwards it: the ejected host does the work, with the caller's session (valid pool-wide).
            if (!await placement.IsLiveAsync(host, cancellationToken))
            {
                throw new XenApiException(ErrorCodes.HostOffline, hostRef);
            }

            using var client = await remote.ConnectAsync(host.Get(XenApi.Host.Address), cancellationToken);
            await CallRemoteAsync(client, "pool.eject", [sessionRef, hostRef], cancellationToken);
            return;
        }

        await ForgetThisHostAsync(host, vms, cancellationToken);
        await membership.LeaveAsync(cancellationToken);
    }

    /// <summary>Removes this host from the pool database: its record, metrics, PBDs, PIFs, and SRs only it could reach.</summary>
    private async Task ForgetThisHostAsync(XenObject host, IReadOnlyList<XenObject> vms, CancellationToken cancellationToken)
    {
        var pbds = await database.GetAllAsync(XenClasses.PBD, cancellationToken);
        var srs = await database.GetAllAsync(XenClasses.SR, cancellationToken);
        var vdis = await database.GetAllAsync(XenClasses.VDI, cancellationToken);
        var vbds = await database.GetAllAsync(XenClasses.VBD, cancellationToken);
        var deletions = new List<XenObject>();
        foreach (var pbd in pbds.Where(p => p.Get(XenApi.PBD.Host) == host.Ref))
        {
            deletions.Add(pbd);
            var sr = srs.FirstOrDefault(s => s.Ref == pbd.Get(XenApi.PBD.SR));
            if (sr is not null && !sr.Get(XenApi.SR.Shared) && pbds.All(p => p.Get(XenApi.PBD.SR) != sr.Ref || p.Get(XenApi.PBD.Host) == host.Ref))
            {
                // A local SR goes with its host, as xapi forgets SRs whose last PBD leaves; the disks stay on the host's disk.
                deletions.Add(sr);
                foreach (var vdi in vdis.Where(v => v.Get(XenApi.VDI.SR) == sr.Ref))
                {
                    deletions.Add(vdi);
                    deletions.AddRange(vbds.Where(b => b.Get(XenApi.VBD.VDI) == vdi.Ref));
                }
            }
        }

        // Its CPUs go with it, as xapi's host.destroy removes its host_cpu records.
        deletions.AddRange((await database.GetAllAsync(XenApi.HostCpu.ClassName, cancellationToken)).Where(c => c.Get(XenApi.HostCpu.Host) == host.Ref));
        // Its network cards go with it (PIFs and their metrics), as xapi's eject forgets them.
        var pifs = (await database.GetAllAsync(XenClasses.PIF, cancellationToken)).Where(p => p.Get(XenApi.PIF.Host) == host.Ref).ToList();
        deletions.AddRange(pifs);
        deletions.AddRange((await database.GetAllAsync(XenApi.PIFMetrics.ClassName, cancellationToken)).Where(m => pifs.Any(p => p.Get(XenApi.PIF.Metrics) == m.Ref)));
        // Its certificates go with it: the pool's hosts stop trusting them, and its etcd certificate is revoked (a copy
        // kept by someone who had root on it is refused by every member).
        var certificates = (await database.GetAllAsync(XenApi.Certificate.ClassName, cancellationToken))
            .Where(c => c.Get(XenApi.Certificate.Host) == host.Ref).ToList();
        deletions.AddRange(certificates);
        await Https.PoolCertificateRevocations.RevokeHostAsync(database, certificates, cancellationToken);
        deletions.Add(host);
        if (await database.TryGetAsync(XenClasses.HostMetrics, host.Get(XenApi.Host.Metrics), cancellationToken) is { } metrics)
        {
            deletions.Add(metrics);
        }

        // etcd bounds the operations in one transaction; the host record goes last, so a retry finds it again.
        foreach (var batch in deletions.Distinct().Chunk(30))
        {
            var tx = new PoolTransaction();
            foreach (var obj in batch)
            {
                tx.Delete(obj);
                if (obj.Class == XenApi.Certificate.ClassName)
                {
                    tx.DeleteKey(PoolKeys.CertificatePem(obj.Ref));
                }
            }

            await database.CommitAsync(tx, cancellationToken);
        }

        foreach (var vm in vms.Where(v => v.Get(XenApi.VM.Affinity) == host.Ref))
        {
            await database.UpdateAsync([(XenClasses.VM, vm.Ref)], (objs, tx) =>
            {
                var v = objs[0].Clone();
                v.Set(XenApi.VM.Affinity, OpaqueRef.Null);
                tx.Update(v);
            }, cancellationToken);
        }

        // The pool's CPU count and feature flags follow from the hosts that remain.
        await PoolRecord.RefreshAsync(database, cancellationToken);
        logger.LogInformation("Host {Host} forgotten by the pool database; leaving the cluster", host.Get(XenApi.Host.NameLabel));
    }

    /// <summary>
    /// <c>pool.recover_slaves</c>: on the new master after an emergency transition, tells every other host to follow
    /// it (<c>pool.emergency_reset_master</c>); returns the hosts that follow it. A host already live in this master's
    /// pool database follows it already and is not reset again (that would take its member out of the cluster and
    /// back in). One host at a time, each until it is live here: each joins the cluster as a learner first, and etcd
    /// takes one learner at a time.
    /// </summary>
    private async Task<object?> RecoverSlavesAsync(CancellationToken cancellationToken)
    {
        var pool = await GetPoolAsync(cancellationToken);
        if (pool is null || pool.Get(XenApi.Pool.Master) != ThisHost)
        {
            throw new XenApiException(ErrorCodes.HostIsSlave, "");
        }

        var me = await database.GetAsync(XenClasses.Host, ThisHost, cancellationToken);
        var secret = await sessions.GetPoolSecretAsync(cancellationToken);
        var hosts = (await database.GetAllAsync(XenClasses.Host, cancellationToken)).Where(h => h.Ref != ThisHost).ToList();
        var recovered = new List<object?>();
        foreach (var h in hosts)
        {
            if (await placement.IsLiveAsync(h, cancellationToken))
            {
                recovered.Add(h.Ref);
                continue;
            }

            if (await ResetMasterOfAsync(h, secret, me.Get(XenApi.Host.Address), cancellationToken))
            {
                recovered.Add(h.Ref);
                await WaitUntilLiveAsync(h, cancellationToken);
            }
        }

        return recovered;
    }

    private async Task<bool> ResetMasterOfAsync(XenObject host, string secret, string masterAddress, CancellationToken cancellationToken)
    {
        try
        {
            using var client = await remote.ConnectAsync(host.Get(XenApi.Host.Address), cancellationToken);
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            limit.CancelAfter(TimeSpan.FromSeconds(60));
            var session = (string)(await CallRemoteAsync(client, "session.slave_login", [host.Ref, secret], limit.Token))!;
            await CallRemoteAsync(client, "pool.emergency_reset_master", [session, masterAddress], limit.Token);
            logger.LogInformation("Host {Host} follows this master again", host.Get(XenApi.Host.NameLabel));
            return true;
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            logger.LogWarning("Could not recover host {Host}: {Reason}", host.Get(XenApi.Host.NameLabel), ex.Message);
            return false;
        }
    }

    /// <summary>Until the host's agent, restarted into this master's cluster, holds its liveness lease here (90 s at most).</summary>
    private async Task WaitUntilLiveAsync(XenObject host, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(500));
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
        while (DateTime.UtcNow < deadline && await timer.WaitForNextTickAsync(cancellationToken))
        {
            if (await placement.IsLiveAsync(host, cancellationToken))
            {
                return;
            }
        }

        logger.LogWarning("Host {Host} answered but is not live in this pool yet; recovering the next host", host.Get(XenApi.Host.NameLabel));
    }

    private async Task<XenObject?> GetPoolAsync(CancellationToken cancellationToken)
    {
        var pools = await database.GetAllAsync(XenClasses.Pool, cancellationToken);
        return pools.Count > 0 ? pools[0] : null;
    }

    private static async Task<object?> CallRemoteAsync(IXenApiClient client, string method, IReadOnlyList<object?> arguments, CancellationToken cancellationToken)
    {
        try
        {
            return await client.CallAsync(method, arguments, cancellationToken);
        }
        catch (XenApiTransportException ex)
        {
            throw new XenApiException(ErrorCodes.JoiningHostConnectionFailed, ex.Message);
        }
    }
}
