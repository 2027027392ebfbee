using Corral.Agent.Hosting;
using Corral.Agent.Operations;
using Corral.Api.Methods;
using Corral.Api.Migration;
using Corral.Api.Operations;
using Corral.Hypervisor;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Agent.Vms;

/// <summary>
/// VM.snapshot (and with quiesce) and VDI.snapshot on this host: the disks copied (by QEMU while the VM runs here, all at
/// one instant; by the SR driver while it is halted), then every record of the snapshot written in one transaction. The
/// new uuids come with the operation, so a resumed operation (the agent died mid-copy) finds what the first attempt
/// left: a snapshot already recorded is the result; otherwise its volumes and QEMU jobs are removed and the copy made
/// again. A failed snapshot leaves neither volumes nor records.
/// </summary>
public sealed class SnapshotHandler(
    IPoolDatabase database,
    VmSupervisor supervisor,
    HostIdentity identity,
    SnapshotVolumes volumes,
    RevertSteps revert,
    ILogger<SnapshotHandler> logger) : IHostOperationHandler
{
    public IReadOnlyCollection<string> Kinds { get; } = [HostOperationKinds.VmSnapshot, HostOperationKinds.VdiSnapshot, HostOperationKinds.VmRevert];

    /// <summary>The operation's list of (reference, new uuid) pairs: <c>ref=uuid,ref=uuid</c>.</summary>
    public static IReadOnlyList<(string Ref, string Uuid)> Pairs(string text) =>
        text.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(p => p.Split('=', 2)).Select(p => (p[0], p[1])).ToList();

    public static string Pairs(IEnumerable<(string Ref, string Uuid)> pairs) => string.Join(",", pairs.Select(p => $"{p.Ref}={p.Uuid}"));

    public async Task<string?> ExecuteAsync(HostOperation operation, OperationProgress progress, CancellationToken cancellationToken) => operation.Kind switch
    {
        HostOperationKinds.VmSnapshot => await SnapshotVmAsync(operation, progress, cancellationToken),
        HostOperationKinds.VdiSnapshot => await SnapshotVdiAsync(operation, progress, cancellationToken),
        HostOperationKinds.VmRevert => await revert.RunAsync(operation, progress, cancellationToken),
        _ => throw new XenApiException(ErrorCodes.NotImplemented, operation.Kind),
    };

    /// <summary>The VM's process when it runs here; null when halted. A VM running elsewhere is refused.</summary>
    private async Task<IVmProcess?> LiveProcessAsync(XenObject vm, CancellationToken cancellationToken) =>
        vm.Get(XenApi.VM.PowerState) is VmPowerState.Halted ? null : await LiveVmChange.ProcessAsync(vm, identity, supervisor, database, cancellationToken);

    private async Task<string> SnapshotVmAsync(HostOperation operation, OperationProgress progress, CancellationToken cancellationToken)
    {
        var snapshotUuid = operation.Argument("snapshot_uuid");
        var vm = await database.GetAsync(XenClasses.VM, operation.Target, cancellationToken);
        var quiesce = operation.Argument("quiesce") == "true";
        var disks = new List<DiskCopy>();
        var vbds = new Dictionary<string, XenObject>(StringComparer.Ordinal);
        foreach (var (vbdRef, uuid) in Pairs(operation.Argument("disks")))
        {
            var vbd = await database.GetAsync(XenClasses.VBD, vbdRef, cancellationToken);
            vbds[vbd.Get(XenApi.VBD.VDI)] = vbd;
            disks.Add(new DiskCopy(await database.GetAsync(XenClasses.VDI, vbd.Get(XenApi.VBD.VDI), cancellationToken), uuid, SnapshotVolumes.DiskIndexOf(vbd)));
        }

        if (await FindByUuidAsync(XenClasses.VM, snapshotUuid, cancellationToken) is { } done)
        {
            // Recorded before the agent stopped: only the volumes' names may be left to give.
            await volumes.CompleteAsync(disks, cancellationToken);
            return done.Ref;
        }

        var process = await LiveProcessAsync(vm, cancellationToken);

        var copied = await CopyAsync(operation, progress, vm, disks, process, quiesce, cancellationToken);
        string snapshotRef;
        try
        {
            snapshotRef = await RecordVmAsync(vm.Ref, snapshotUuid, operation.Argument("new_name"), quiesce, copied, vbds, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            await volumes.DiscardAsync(disks, null, CancellationToken.None);
            throw;
        }

        await volumes.CompleteAsync(disks, cancellationToken);
        await volumes.RecordSrsAsync(disks.Select(d => d.Vdi.Get(XenApi.VDI.SR)), cancellationToken);
        logger.LogInformation(SnapshotEvents.Taken, "VM {Vm}: snapshot {Snapshot} taken ({Disks} disks, {Mode})", vm.Get(XenApi.VM.NameLabel), snapshotUuid, disks.Count,
            process is null ? "halted" : quiesce ? "running, quiesced" : "running");
        return snapshotRef;
    }

    /// <summary>Copies the disks; a resumed operation first removes what the interrupted copy left.</summary>
    private async Task<IReadOnlyList<CopiedDisk>> CopyAsync(HostOperation operation, OperationProgress progress, XenObject vm, IReadOnlyList<DiskCopy> disks,
        IVmProcess? process, bool quiesce, CancellationToken cancellationToken)
    {
        if (operation.Step != "submitted")
        {
            logger.LogInformation(SnapshotEvents.ResumedDiscarding, "Snapshot of {Target} resumed at {Step}: removing what the interrupted copy left", operation.Target, operation.Step);
            await volumes.DiscardAsync(disks, process, cancellationToken);
        }

        await progress.StepAsync("copying", cancellationToken);
        try
        {
            return await volumes.CopyAsync(disks, process, quiesce, cancellationToken);
        }
        catch (GuestQuiesceException ex)
        {
            logger.LogWarning(SnapshotEvents.QuiesceFailed, "VM {Vm}: quiesce failed: {Reason}", vm.Get(XenApi.VM.NameLabel), ex.Message);
            throw new XenApiException(ex.Unsupported ? "VM_SNAPSHOT_WITH_QUIESCE_NOT_SUPPORTED" : "VM_SNAPSHOT_WITH_QUIESCE_FAILED", vm.Ref);
        }
    }

    /// <summary>Every record of the snapshot in one transaction, with the VM's parent pointing at it.</summary>
    private async Task<string> RecordVmAsync(string vmRef, string uuid, string name, bool quiesced, IReadOnlyList<CopiedDisk> copied,
        Dictionary<string, XenObject> vbdsByVdi, CancellationToken cancellationToken)
    {
        var now = DateTime.UtcNow;
        var vm = await database.GetAsync(XenClasses.VM, vmRef, cancellationToken);
        var others = new List<XenObject>();
        foreach (var vbdRef in vm.Get(XenApi.VM.VBDs))
        {
            var vbd = await database.GetAsync(XenClasses.VBD, vbdRef, cancellationToken);
            // Disks not snapshotted (ignore_vdis) are left out; CD drives and empty drives are kept as they are.
            if (vbd.Get(XenApi.VBD.Type) != VbdType.Disk || vbd.Get(XenApi.VBD.Empty))
            {
                others.Add(vbd);
            }
        }

        var vifs = new List<XenObject>();
        foreach (var vifRef in vm.Get(XenApi.VM.VIFs))
        {
            vifs.Add(await database.GetAsync(XenClasses.VIF, vifRef, cancellationToken));
        }

        var vtpms = await VtpmRecords.ReadAsync(database, vm, cancellationToken);
        string? snapshotRef = null;
        await database.UpdateAsync([(XenClasses.VM, vmRef)], (objs, tx) =>
        {
            var current = objs[0];
            var snapshot = SnapshotRecords.CreateVm(tx, current, uuid, name, quiesced, now);
            snapshotRef = snapshot.Ref;
            foreach (var copy in copied)
            {
                var vdi = SnapshotRecords.CreateVdi(tx, copy.Disk.Vdi, copy.Disk.NewUuid, copy.Volume.Location, copy.Volume.VirtualSize,
                    copy.Volume.PhysicalUtilisation, isSnapshot: true, now);
                SnapshotRecords.CopyVbd(tx, vbdsByVdi[copy.Disk.Vdi.Ref], snapshot.Ref, vdi.Ref, owned: true);
            }

            foreach (var vbd in others)
            {
                SnapshotRecords.CopyVbd(tx, vbd, snapshot.Ref, vbd.Get(XenApi.VBD.VDI), owned: false);
            }

            foreach (var vif in vifs)
            {
                SnapshotRecords.CopyVif(tx, vif, snapshot.Ref);
            }

            foreach (var vtpm in vtpms)
            {
                VtpmRecords.CopyInto(tx, vtpm, snapshot.Ref);
            }

            var parent = current.Clone();
            parent.Set(XenApi.VM.Parent, snapshot.Ref);
            tx.Update(parent);
        }, cancellationToken);
        return snapshotRef!;
    }

    private async Task<string> SnapshotVdiAsync(HostOperation operation, OperationProgress progress, CancellationToken cancellationToken)
    {
        var uuid = operation.Argument("new_uuid");
        var vdi = await database.GetAsync(XenClasses.VDI, operation.Argument("vdi", operation.Target), cancellationToken);
        if (await FindByUuidAsync(XenClasses.VDI, uuid, cancellationToken) is { } done)
        {
            await volumes.CompleteAsync([new DiskCopy(vdi, uuid, null)], cancellationToken);
            return done.Ref;
        }

        IVmProcess? process = null;
        int? index = null;
        if (operation.Argument("vbd") is { Length: > 0 } vbdRef)
        {
            var vbd = await database.GetAsync(XenClasses.VBD, vbdRef, cancellationToken);
            process = await LiveProcessAsync(await database.GetAsync(XenClasses.VM, vbd.Get(XenApi.VBD.VM), cancellationToken), cancellationToken);
            index = process is null ? null : SnapshotVolumes.DiskIndexOf(vbd);
        }

        var disk = new DiskCopy(vdi, uuid, index);
        if (operation.Step != "submitted")
        {
            await volumes.DiscardAsync([disk], process, cancellationToken);
        }

        await progress.StepAsync("copying", cancellationToken);
        var copy = (await volumes.CopyAsync([disk], process, quiesce: false, cancellationToken))[0];
        var tx = new PoolTransaction();
        var snapshot = SnapshotRecords.CreateVdi(tx, vdi, uuid, copy.Volume.Location, copy.Volume.VirtualSize, copy.Volume.PhysicalUtilisation, isSnapshot: true,
            DateTime.UtcNow);
        try
        {
            await database.CommitAsync(tx, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            await volumes.DiscardAsync([disk], null, CancellationToken.None);
            throw;
        }

        await volumes.CompleteAsync([disk], cancellationToken);
        await volumes.RecordSrsAsync([vdi.Get(XenApi.VDI.SR)], cancellationToken);
        return snapshot.Ref;
    }

    private async Task<XenObject?> FindByUuidAsync(string className, string uuid, CancellationToken cancellationToken) =>
        string.IsNullOrEmpty(uuid) ? null : await database.FindByUuidAsync(className, uuid, cancellationToken);
}
