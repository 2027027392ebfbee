using Corral.Api.AllowedOperations;
using Corral.Api.Dispatch;
using Corral.Api.Operations;
using Corral.Model;
using Corral.PoolDatabase;
using Corral.Storage;

namespace Corral.Api.Methods;

/// <summary>
/// VM snapshots as XenServer has them (disk snapshots, no memory): VM.snapshot, VM.snapshot_with_quiesce, VDI.snapshot
/// and VM.revert. The copies are made by a host: the VM's own while it runs (QEMU copies its disks at one instant), a
/// host that has the SRs while it is halted. A snapshot is destroyed as xapi's are: VM.destroy, then its VDIs.
/// </summary>
public sealed class SnapshotMethods(IPoolDatabase database, Placement placement, HostOperationQueue operations, OperationMarks marks, SrDrivers drivers)
    : IApiMethodProvider
{
    private static readonly FieldType Ref = FieldType.String;

    public void Register(ApiRegistry registry)
    {
        registry.Add("VM.snapshot", (ctx, a, ct) => SnapshotAsync(ctx, (string)a[0]!, (string)a[1]!, ((List<object?>)a[2]!).Select(v => (string)v!).ToHashSet(), false, ct),
            ("vm", Ref), ("new_name", FieldType.String), ("ignore_vdis", FieldType.RefSet(XenClasses.VDI)));
        // Removed from xapi with its VSS support; Corral quiesces through the QEMU guest agent instead.
        registry.Revive("VM.snapshot_with_quiesce", (ctx, a, ct) => SnapshotAsync(ctx, (string)a[0]!, (string)a[1]!, [], true, ct));
        registry.Add("VDI.snapshot", (ctx, a, ct) => SnapshotVdiAsync(ctx, (string)a[0]!, ct), ("vdi", Ref), ("driver_params", FieldType.StringMap));
        registry.Add("VM.revert", (ctx, a, ct) => RevertAsync(ctx, (string)a[0]!, ct), ("snapshot", Ref));
    }

    private async Task<object?> SnapshotAsync(CallContext context, string vmRef, string newName, HashSet<string> ignoreVdis, bool quiesce,
        CancellationToken cancellationToken)
    {
        await using var mark = await marks.MarkVmAsync(context, vmRef, quiesce ? VmOperations.SnapshotWithQuiesce : VmOperations.Snapshot, cancellationToken);
        var vm = await database.GetAsync(XenClasses.VM, vmRef, cancellationToken);
        var disks = new List<(string Ref, string Uuid)>();
        var srs = new HashSet<string>(StringComparer.Ordinal);
        foreach (var vbdRef in vm.Get(XenApi.VM.VBDs))
        {
            var vbd = await database.GetAsync(XenClasses.VBD, vbdRef, cancellationToken);
            if (vbd.Get(XenApi.VBD.Type) != VbdType.Disk || vbd.Get(XenApi.VBD.Empty) || ignoreVdis.Contains(vbd.Get(XenApi.VBD.VDI)))
            {
                continue;
            }

            var vdi = await database.GetAsync(XenClasses.VDI, vbd.Get(XenApi.VBD.VDI), cancellationToken);
            await RequireSnapshotFeatureAsync(vdi, cancellationToken);
            srs.Add(vdi.Get(XenApi.VDI.SR));
            disks.Add((vbdRef, OpaqueRef.NewUuid()));
        }

        var host = vm.Get(XenApi.VM.PowerState) == VmPowerState.Halted ? await HostWithSrsAsync(srs, cancellationToken) : await ResidentHostAsync(vm, cancellationToken);
        // Every uuid is chosen here and persisted with the operation: a resumed operation knows what it was making.
        var arguments = new Dictionary<string, string>
        {
            ["new_name"] = newName,
            ["snapshot_uuid"] = OpaqueRef.NewUuid(),
            ["disks"] = string.Join(",", disks.Select(d => $"{d.Ref}={d.Uuid}")),
            ["quiesce"] = quiesce ? "true" : "false",
        };
        return await operations.RunAsync(HostOperationKinds.VmSnapshot, host, vmRef, arguments, context, cancellationToken, mark);
    }

    private async Task<object?> SnapshotVdiAsync(CallContext context, string vdiRef, CancellationToken cancellationToken)
    {
        var vdi = await database.GetArgumentAsync(XenClasses.VDI, vdiRef, cancellationToken);
        await RequireSnapshotFeatureAsync(vdi, cancellationToken);
        var arguments = new Dictionary<string, string> { ["new_uuid"] = OpaqueRef.NewUuid(), ["vdi"] = vdiRef };
        string? host = null;
        var target = vdiRef;
        foreach (var vbdRef in vdi.Get(XenApi.VDI.VBDs))
        {
            var vbd = await database.GetAsync(XenClasses.VBD, vbdRef, cancellationToken);
            var vm = await database.GetAsync(XenClasses.VM, vbd.Get(XenApi.VBD.VM), cancellationToken);
            if (vbd.Get(XenApi.VBD.CurrentlyAttached) && vm.Get(XenApi.VM.PowerState) != VmPowerState.Halted)
            {
                // In use by a running guest: its QEMU makes the copy, consistent with what the guest has written.
                arguments["vbd"] = vbdRef;
                host = await ResidentHostAsync(vm, cancellationToken);
                // Aimed at the VM, so that the host runs it after (never during) the VM's other work, snapshots included.
                target = vm.Ref;
            }
        }

        host ??= await HostWithSrsAsync([vdi.Get(XenApi.VDI.SR)], cancellationToken);
        return await operations.RunAsync(HostOperationKinds.VdiSnapshot, host, target, arguments, context, cancellationToken);
    }

    /// <summary>
    /// VM.revert: the VM (<c>snapshot_of</c>) ends halted with the snapshot's disks (fresh copies), devices and
    /// settings. A VM that runs is stopped first (a hard shutdown), as its disks are about to be replaced.
    /// </summary>
    private async Task<object?> RevertAsync(CallContext context, string snapshotRef, CancellationToken cancellationToken)
    {
        await using var snapshotMark = await marks.MarkVmAsync(context, snapshotRef, VmOperations.Revert, cancellationToken);
        var snapshot = await database.GetAsync(XenClasses.VM, snapshotRef, cancellationToken);
        var vmRef = snapshot.Get(XenApi.VM.SnapshotOf);
        var vm = await database.TryGetAsync(XenClasses.VM, vmRef, cancellationToken)
                 ?? throw new XenApiException("VM_REVERT_FAILED", snapshotRef, vmRef);
        if (vm.Get(XenApi.VM.PowerState) != VmPowerState.Halted)
        {
            await using var stop = await marks.MarkVmAsync(context with { TaskRef = null }, vmRef, VmOperations.HardShutdown, cancellationToken);
            await operations.RunAsync(HostOperationKinds.VmHardShutdown, await ResidentHostAsync(vm, cancellationToken), vmRef, new Dictionary<string, string>(),
                context with { TaskRef = null }, cancellationToken, stop);
        }

        await using var mark = await marks.MarkVmAsync(context, vmRef, VmOperations.Reverting, cancellationToken);
        var disks = new List<string>();
        var srs = new HashSet<string>(StringComparer.Ordinal);
        foreach (var vbdRef in snapshot.Get(XenApi.VM.VBDs))
        {
            var vbd = await database.GetAsync(XenClasses.VBD, vbdRef, cancellationToken);
            if (vbd.Get(XenApi.VBD.Type) == VbdType.Disk && !vbd.Get(XenApi.VBD.Empty))
            {
                var vdi = await database.GetAsync(XenClasses.VDI, vbd.Get(XenApi.VBD.VDI), cancellationToken);
                srs.Add(vdi.Get(XenApi.VDI.SR));
                disks.Add($"{vbdRef}={OpaqueRef.NewUuid()}");
            }
        }

        var arguments = new Dictionary<string, string> { ["snapshot"] = snapshotRef, ["disks"] = string.Join(",", disks) };
        await operations.RunAsync(HostOperationKinds.VmRevert, await HostWithSrsAsync(srs, cancellationToken), vmRef, arguments, context, cancellationToken, mark);
        return null;
    }

    /// <summary>SR_OPERATION_NOT_SUPPORTED for a VDI whose SR's driver cannot snapshot (an ISO library).</summary>
    private async Task RequireSnapshotFeatureAsync(XenObject vdi, CancellationToken cancellationToken)
    {
        var sr = await database.GetAsync(XenClasses.SR, vdi.Get(XenApi.VDI.SR), cancellationToken);
        if (drivers.Find(sr.Get(XenApi.SR.Type)) is not { } driver || !driver.Features.Contains("VDI_SNAPSHOT"))
        {
            throw new XenApiException(ErrorCodes.SrOperationNotSupported, sr.Ref);
        }
    }

    private async Task<string> ResidentHostAsync(XenObject vm, CancellationToken cancellationToken)
    {
        var hostRef = vm.Get(XenApi.VM.ResidentOn);
        var host = await database.TryGetAsync(XenClasses.Host, hostRef, cancellationToken);
        if (host is null || !await placement.IsLiveAsync(host, cancellationToken))
        {
            throw new XenApiException(ErrorCodes.HostOffline, hostRef);
        }

        return hostRef;
    }

    /// <summary>A live host that has every SR named plugged (any live host when there are none).</summary>
    private async Task<string> HostWithSrsAsync(IReadOnlyCollection<string> srRefs, CancellationToken cancellationToken)
    {
        var attached = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var srRef in srRefs)
        {
            var sr = await database.GetAsync(XenClasses.SR, srRef, cancellationToken);
            foreach (var pbdRef in sr.Get(XenApi.SR.PBDs))
            {
                if (await database.TryGetAsync(XenClasses.PBD, pbdRef, cancellationToken) is { } pbd && pbd.Get(XenApi.PBD.CurrentlyAttached))
                {
                    attached[pbd.Get(XenApi.PBD.Host)] = attached.GetValueOrDefault(pbd.Get(XenApi.PBD.Host)) + 1;
                }
            }
        }

        var candidates = srRefs.Count == 0
            ? (await database.GetAllAsync(XenClasses.Host, cancellationToken)).Select(h => h.Ref)
            : attached.Where(kv => kv.Value == srRefs.Count).Select(kv => kv.Key);
        foreach (var hostRef in candidates)
        {
            if (await database.TryGetAsync(XenClasses.Host, hostRef, cancellationToken) is { } host && await placement.IsLiveAsync(host, cancellationToken))
            {
                return hostRef;
            }
        }

        throw new XenApiException(ErrorCodes.SrHasNoPbds, srRefs.FirstOrDefault() ?? OpaqueRef.Null);
    }
}
