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
            await TryGetAsync(database, XenClasses.VMMetrics, vm.GetString("metrics"), cancellationToken),
            await TryGetAsync(database, XenClasses.VMGuestMetrics, vm.GetString("guest_metrics"), cancellationToken),
            await TryGetAsync(database, XenClasses.Host, vm.GetString("resident_on"), cancellationToken),
        };
        foreach (var vbdRef in vm.GetSet("VBDs"))
        {
            var vbd = await TryGetAsync(database, XenClasses.VBD, vbdRef, cancellationToken);
            objects.Add(vbd);
            objects.Add(vbd is null ? null : await TryGetAsync(database, XenClasses.VDI, vbd.GetString("VDI"), cancellationToken));
        }

        foreach (var vtpmRef in vm.GetSet("VTPMs"))
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
            await TryGetAsync(database, XenClasses.HostMetrics, host.GetString("metrics"), cancellationToken),
        };
        return new OperationFacts(PoolObjectIndex.Of(objects), _ => new HashSet<string>());
    }

    /// <summary>What the SR rules read besides the SR: its PBDs, its VDIs and their VBDs, and the pool.</summary>
    public static async Task<OperationFacts> ForSrAsync(IPoolDatabase database, SrDrivers drivers, XenObject sr, CancellationToken cancellationToken)
    {
        var objects = new List<XenObject?>(await database.GetAllAsync(XenClasses.Pool, cancellationToken));
        foreach (var pbdRef in sr.GetSet("PBDs"))
        {
            objects.Add(await TryGetAsync(database, XenClasses.PBD, pbdRef, cancellationToken));
        }

        foreach (var vdiRef in sr.GetSet("VDIs"))
        {
            var vdi = await TryGetAsync(database, XenClasses.VDI, vdiRef, cancellationToken);
            objects.Add(vdi);
            foreach (var vbdRef in vdi?.GetSet("VBDs") ?? [])
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
