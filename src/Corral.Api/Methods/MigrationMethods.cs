using Corral.Api.Dispatch;
using Corral.Api.Migration;
using Corral.Api.Tasks;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Api.Methods;

/// <summary>
/// Live migration. <c>VM.pool_migrate</c> moves a VM between hosts that share its storage; <c>host.migrate_receive</c>
/// and <c>VM.migrate_send</c> are XenServer's storage migration, where the <c>vdi_map</c> names disks to copy live to
/// another SR (a VM on a host's local SR moves with its disks). Corral does both inside one pool: the <c>dest</c> map
/// must come from this pool's <c>host.migrate_receive</c>. Each call ends when the migration does, with the source
/// half's outcome (<see cref="MigrationStarter"/>).
/// </summary>
public sealed class MigrationMethods(IPoolDatabase database, MigrationStarter starter, TaskService tasks) : IApiMethodProvider
{
    private static readonly FieldType StringMap = FieldType.Map(FieldType.String, FieldType.String);

    public void Register(ApiRegistry registry)
    {
        registry.Add("VM.pool_migrate", (ctx, a, ct) => PoolMigrateAsync(ctx, (string)a[0]!, (string)a[1]!, (Dictionary<string, object?>)a[2]!, ct),
            ("vm", FieldType.String), ("host", FieldType.String), ("options", StringMap));
        registry.Add("host.migrate_receive", (ctx, a, ct) => MigrateReceiveAsync(ctx, (string)a[0]!, (string)a[1]!, ct),
            ("host", FieldType.String), ("network", FieldType.String), ("options", StringMap));
        // vm, dest, live, vdi_map, vif_map, options, vgpu_map (which older clients leave off).
        registry.Implement("VM.migrate_send", (ctx, a, ct) => MigrateSendAsync(ctx, a, assertOnly: false, ct));
        registry.Implement("VM.assert_can_migrate", (ctx, a, ct) => MigrateSendAsync(ctx, a, assertOnly: true, ct));
    }

    private async Task<object?> PoolMigrateAsync(CallContext context, string vmRef, string hostRef, Dictionary<string, object?> options, CancellationToken cancellationToken)
    {
        var sendTask = await starter.StartAsync(context.SessionRef, vmRef, hostRef, options, context.TaskRef, cancellationToken);
        await WaitAndDeleteAsync(sendTask, cancellationToken);
        return null;
    }

    /// <summary>
    /// The destination's side of a storage migration, as a map for <c>VM.migrate_send</c>'s <c>dest</c>: which host,
    /// of which pool, under which session. Checks the host can take a VM now.
    /// </summary>
    private async Task<object?> MigrateReceiveAsync(CallContext context, string hostRef, string networkRef, CancellationToken cancellationToken)
    {
        var host = await database.GetArgumentAsync(XenClasses.Host, hostRef, cancellationToken);
        if (!OpaqueRef.IsNull(networkRef) && (!OpaqueRef.IsWellFormed(networkRef)
                || await database.TryGetAsync(XenClasses.Network, networkRef, cancellationToken) is null))
        {
            throw XenApiException.HandleInvalid(XenClasses.Network, networkRef);
        }

        if (!host.Get(XenApi.Host.Enabled))
        {
            throw new XenApiException(ErrorCodes.HostDisabled, host.Ref);
        }

        var pool = (await database.GetAllAsync(XenClasses.Pool, cancellationToken)).Single();
        var master = await database.TryGetAsync(XenClasses.Host, pool.Get(XenApi.Pool.Master), cancellationToken);
        return new Dictionary<string, object?>
        {
            ["host"] = host.Ref,
            ["pool"] = pool.Ref,
            ["master"] = master is null ? "" : $"http://{master.Get(XenApi.Host.Address)}/",
            ["session_id"] = context.SessionRef,
        };
    }

    private async Task<object?> MigrateSendAsync(CallContext context, object?[] a, bool assertOnly, CancellationToken cancellationToken)
    {
        var vmRef = (string)a[0]!;
        var dest = ToStrings((Dictionary<string, object?>)a[1]!);
        var vdiMap = ToStrings((Dictionary<string, object?>)a[3]!);
        var vifMap = ToStrings((Dictionary<string, object?>)a[4]!);
        var options = (Dictionary<string, object?>)a[5]!;
        var hostRef = await DestinationHostAsync(dest, cancellationToken);
        await CheckVifMapAsync(vmRef, vifMap, cancellationToken);
        if (assertOnly)
        {
            await starter.CheckAsync(vmRef, hostRef, vdiMap, cancellationToken, MigrationStarter.Forced(options));
            return null;
        }

        var sendTask = await starter.StartAsync(context.SessionRef, vmRef, hostRef, options, context.TaskRef, cancellationToken, vdiMap);
        await WaitAndDeleteAsync(sendTask, cancellationToken);
        return vmRef;
    }

    /// <summary>The host a <c>dest</c> map names; it must be one of this pool's (cross-pool migration is not done).</summary>
    private async Task<string> DestinationHostAsync(IReadOnlyDictionary<string, string> dest, CancellationToken cancellationToken)
    {
        var hostRef = dest.GetValueOrDefault("host") ?? throw new XenApiException(ErrorCodes.InvalidValue, "dest", "no host: pass the map Host.migrate_receive returned");
        var pool = (await database.GetAllAsync(XenClasses.Pool, cancellationToken)).Single();
        if (dest.GetValueOrDefault("pool") is { } poolRef && poolRef != pool.Ref
            || !OpaqueRef.IsWellFormed(hostRef) || await database.TryGetAsync(XenClasses.Host, hostRef, cancellationToken) is null)
        {
            throw new XenApiException(ErrorCodes.OperationNotAllowed,
                "the destination is not a host of this pool: Corral migrates between the hosts of one pool (join the host to the pool first)");
        }

        return hostRef;
    }

    /// <summary>Networks are pool-wide, so a VIF keeps its network; a map that would move one is refused rather than ignored.</summary>
    private async Task CheckVifMapAsync(string vmRef, IReadOnlyDictionary<string, string> vifMap, CancellationToken cancellationToken)
    {
        foreach (var (vifRef, networkRef) in vifMap)
        {
            var vif = OpaqueRef.IsWellFormed(vifRef) ? await database.TryGetAsync(XenClasses.VIF, vifRef, cancellationToken) : null;
            if (vif is null || vif.Get(XenApi.VIF.VM) != vmRef)
            {
                throw XenApiException.HandleInvalid(XenClasses.VIF, vifRef);
            }

            if (vif.Get(XenApi.VIF.Network) != networkRef)
            {
                throw new XenApiException(ErrorCodes.OperationNotAllowed, "a VIF cannot change network during migration; change it before or after");
            }
        }
    }

    private static Dictionary<string, string> ToStrings(Dictionary<string, object?> map) =>
        map.ToDictionary(kv => kv.Key, kv => kv.Value as string ?? "", StringComparer.Ordinal);

    private async Task WaitAndDeleteAsync(string sendTask, CancellationToken cancellationToken)
    {
        try
        {
            await tasks.WaitAsync(sendTask, cancellationToken);
        }
        finally
        {
            await DeleteTaskAsync(sendTask);
        }
    }

    private async Task DeleteTaskAsync(string taskRef)
    {
        if (await database.TryGetAsync(XenClasses.Task, taskRef, CancellationToken.None) is { } task)
        {
            var tx = new PoolTransaction();
            tx.Delete(task);
            try
            {
                await database.CommitAsync(tx, CancellationToken.None);
            }
            catch (ConcurrentUpdateException)
            {
            }
        }
    }
}
