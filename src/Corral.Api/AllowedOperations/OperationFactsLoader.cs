using Corral.Model;
using Corral.PoolDatabase;
using Corral.Storage;

namespace Corral.Api.AllowedOperations;

/// <summary>Reads from the pool database what one object's rules need, to check an operation when it is called.</summary>
public static class OperationFactsLoader
{
    /// <summary>The SM features of an SR type: Corral's SR driver's (Corral keeps no SM records).</summary>
    public static Func<string, IReadOnlySet<string>> Features(SrDrivers drivers) =>
        type => drivers.Find(type)?.Features ?? new HashSet<string>();

    /// <summary>What the VM rules read besides the VM: its metrics, guest metrics, disks' VDIs, VTPMs, host and the pool.</summary>
    public static async Task<OperationFacts> ForVmAsync(IPoolDatabase database, XenObject vm, CancellationToken cancellationToken)
    {
        var objects = new List<XenObject?>(await database.GetAllAsync(XenClasses.Pool, cancellationToken))
        {
            await TryGetAsync(database, XenClasses.VMMetrics, vm.Get(XenApi.VM.Metrics), cancellationToken),
            await TryGetAsync(database, XenClasses.VMGuestMetrics, vm.Get(XenApi.VM.GuestMetrics), cancellationToken),
            await TryGetAsync(database, XenClasses.Host, vm.Get(XenApi.VM.ResidentOn), cancellationToken),
        };
        foreach (var vbdRef in vm.Get(XenApi.VM.VBDs))
        {
            var vbd = await TryGetAsync(database, XenClasses.VBD, vbdRef, cancellationToken);
            objects.Add(vbd);
            objects.Add(vbd is null ? null : await TryGetAsync(database, XenClasses.VDI, vbd.Get(XenApi.VBD.VDI), cancellationToken));
        }

        foreach (var vtpmRef in vm.Get(XenApi.VM.VTPMs))
        {
            objects.Add(await TryGetAsync(database, XenApi.VTPM.ClassName, vtpmRef, cancellationToken));
        }

        return new OperationFacts(PoolObjectIndex.Of(objects), _ => new HashSet<string>());
    }

    /// <summary>What the host rules read besides the host: its metrics and the pool.</summary>
    public static async Task<OperationFacts> ForHostAsync(IPoolDatabase database, XenObject host, CancellationToken cancellationToken)
    {
        var objects = new List<XenObject?>(await database.GetAllAsync(XenClasses.Pool, cancellationToken))
        {
            await TryGetAsync(database, XenClasses.HostMetrics, host.Get(XenApi.Host.Metrics), cancellationToken),
        };
        return new OperationFacts(PoolObjectIndex.Of(objects), _ => new HashSet<string>());
    }

    /// <summary>What the pool rules read besides the pool: whether a cluster exists.</summary>
    public static async Task<OperationFacts> ForPoolAsync(IPoolDatabase database, CancellationToken cancellationToken) =>
        new(PoolObjectIndex.Of([.. await database.GetAllAsync(XenApi.Cluster.ClassName, cancellationToken)]), _ => new HashSet<string>());

    /// <summary>What the SR rules read besides the SR: its PBDs, its VDIs and their VBDs, and the pool.</summary>
    public static async Task<OperationFacts> ForSrAsync(IPoolDatabase database, SrDrivers drivers, XenObject sr, CancellationToken cancellationToken)
    {
        var objects = new List<XenObject?>(await database.GetAllAsync(XenClasses.Pool, cancellationToken));
        foreach (var pbdRef in sr.Get(XenApi.SR.PBDs))
        {
            objects.Add(await TryGetAsync(database, XenClasses.PBD, pbdRef, cancellationToken));
        }

        foreach (var vdiRef in sr.Get(XenApi.SR.VDIs))
        {
            var vdi = await TryGetAsync(database, XenClasses.VDI, vdiRef, cancellationToken);
            objects.Add(vdi);
            foreach (var vbdRef in vdi?.Get(XenApi.VDI.VBDs) ?? [])
            {
                objects.Add(await TryGetAsync(database, XenClasses.VBD, vbdRef, cancellationToken));
            }
        }

        return new OperationFacts(PoolObjectIndex.Of(objects), Features(drivers));
    }

    private static async Task<XenObject?> TryGetAsync(IPoolDatabase database, string className, string reference, CancellationToken cancellationToken) =>
        OpaqueRef.IsWellFormed(reference) && !OpaqueRef.IsNull(reference)
            ? await database.TryGetAsync(className, reference, cancellationToken)
            : null;
}
