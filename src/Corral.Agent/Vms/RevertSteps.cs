using Corral.Agent.Operations;
using Corral.Api.Methods;
using Corral.Api.Operations;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Agent.Vms;

/// <summary>
/// VM.revert on a host that has the snapshot's SRs, the VM halted: copies of the snapshot's disks are made first (the
/// snapshot stays as it is, so it can be reverted to again); then, in one transaction, the VM's disks that the snapshot
/// holds copies of are replaced by the new copies, its other disks detached (kept), its CD drives, VIFs and VTPMs
/// replaced by the snapshot's, and its fields restored from what the snapshot recorded (NVRAM included); last, the
/// replaced disks' volumes are removed. The step before the transaction persists those volumes, so an agent that dies
/// after it removes them when it resumes; before it, the new copies are removed and made again.
/// </summary>
public sealed class RevertSteps(IPoolDatabase database, SnapshotVolumes volumes, ILogger<RevertSteps> logger)
{
    private const string Committing = "committing";

    public async Task<string?> RunAsync(HostOperation operation, OperationProgress progress, CancellationToken cancellationToken)
    {
        var snapshot = await database.GetAsync(XenClasses.VM, operation.Argument("snapshot"), cancellationToken);
        var disks = new List<DiskCopy>();
        var snapshotVbds = new Dictionary<string, XenObject>(StringComparer.Ordinal);
        foreach (var (vbdRef, uuid) in SnapshotHandler.Pairs(operation.Argument("disks")))
        {
            var vbd = await database.GetAsync(XenClasses.VBD, vbdRef, cancellationToken);
            snapshotVbds[vbd.Get(XenApi.VBD.VDI)] = vbd;
            disks.Add(new DiskCopy(await database.GetAsync(XenClasses.VDI, vbd.Get(XenApi.VBD.VDI), cancellationToken), uuid, null));
        }

        if (operation.Step == Committing && disks.Count > 0 && await database.FindByUuidAsync(XenClasses.VDI, disks[0].NewUuid, cancellationToken) is not null)
        {
            // The transaction was made before the agent stopped: the copies' names and the replaced volumes are left.
            await volumes.CompleteAsync(disks, cancellationToken);
            await RemoveOldVolumesAsync(progress.Current, disks, cancellationToken);
            return null;
        }

        var vm = await database.GetAsync(XenClasses.VM, operation.Target, cancellationToken);
        VmPowerStates.Require(vm, VmPowerState.Halted);
        if (operation.Step != "submitted")
        {
            await volumes.DiscardAsync(disks, null, cancellationToken);
        }

        await progress.StepAsync("copying", cancellationToken);
        try
        {
            var copied = await volumes.CopyAsync(disks, null, quiesce: false, cancellationToken);
            var plan = await PlanAsync(vm, snapshot, disks, cancellationToken);
            await progress.StepAsync(Committing, cancellationToken, new Dictionary<string, string>
            {
                ["old_volumes"] = string.Join(",", plan.Destroyed.Select(v => $"{v.Get(XenApi.VDI.SR)}|{v.Get(XenApi.VDI.Location)}")),
            });
            try
            {
                await CommitAsync(vm.Ref, snapshot.Ref, disks, copied, snapshotVbds, cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                await volumes.DiscardAsync(disks, null, CancellationToken.None);
                throw;
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            logger.LogWarning(SnapshotEvents.RevertFailed, ex, "Reverting VM {Vm} to snapshot {Snapshot} failed", vm.Uuid, snapshot.Uuid);
            throw new XenApiException("VM_REVERT_FAILED", snapshot.Ref, vm.Ref);
        }

        logger.LogInformation(SnapshotEvents.Reverted, "VM {Vm} reverted to snapshot {Snapshot}", vm.Get(XenApi.VM.NameLabel), snapshot.Get(XenApi.VM.NameLabel));
        await volumes.CompleteAsync(disks, cancellationToken);
        await RemoveOldVolumesAsync(progress.Current, disks, cancellationToken);
        return null;
    }

    /// <summary>What the revert removes and keeps, read before the transaction.</summary>
    private sealed record Plan(
        IReadOnlyList<XenObject> VmVbds,
        IReadOnlyList<XenObject> Destroyed,
        IReadOnlyList<XenObject> VmVifs,
        IReadOnlyList<VtpmRecords.Stored> VmVtpms,
        IReadOnlyList<XenObject> SnapshotOthers,
        IReadOnlyList<XenObject> SnapshotVifs,
        IReadOnlyList<VtpmRecords.Stored> SnapshotVtpms,
        IReadOnlyList<XenObject> SnapshotsOfDestroyed);

    private async Task<Plan> PlanAsync(XenObject vm, XenObject snapshot, IReadOnlyList<DiskCopy> disks, CancellationToken cancellationToken)
    {
        var vmVbds = await ReadAllAsync(XenClasses.VBD, vm.Get(XenApi.VM.VBDs), cancellationToken);
        var replaced = disks.Select(d => d.Vdi.Get(XenApi.VDI.SnapshotOf)).ToHashSet(StringComparer.Ordinal);
        var destroyed = new List<XenObject>();
        foreach (var vbd in vmVbds.Where(v => v.Get(XenApi.VBD.Type) == VbdType.Disk && replaced.Contains(v.Get(XenApi.VBD.VDI))))
        {
            if (await database.TryGetAsync(XenClasses.VDI, vbd.Get(XenApi.VBD.VDI), cancellationToken) is { } vdi)
            {
                destroyed.Add(vdi);
            }
        }

        var destroyedRefs = destroyed.Select(v => v.Ref).ToHashSet(StringComparer.Ordinal);
        var snapshotVbds = await ReadAllAsync(XenClasses.VBD, snapshot.Get(XenApi.VM.VBDs), cancellationToken);
        var copiedVdis = disks.Select(d => d.Vdi.Ref).ToHashSet(StringComparer.Ordinal);
        return new Plan(
            vmVbds,
            destroyed,
            await ReadAllAsync(XenClasses.VIF, vm.Get(XenApi.VM.VIFs), cancellationToken),
            await VtpmRecords.ReadAsync(database, vm, cancellationToken),
            snapshotVbds.Where(v => !copiedVdis.Contains(v.Get(XenApi.VBD.VDI)) && (v.Get(XenApi.VBD.Type) != VbdType.Disk || v.Get(XenApi.VBD.Empty))).ToList(),
            await ReadAllAsync(XenClasses.VIF, snapshot.Get(XenApi.VM.VIFs), cancellationToken),
            await VtpmRecords.ReadAsync(database, snapshot, cancellationToken),
            (await database.GetAllAsync(XenClasses.VDI, cancellationToken)).Where(v => destroyedRefs.Contains(v.Get(XenApi.VDI.SnapshotOf))).ToList());
    }

    /// <summary>
    /// The revert's one transaction, every record it deletes or changes read just before and guarded at that revision:
    /// a record changed meanwhile (the VM's devices recorded detached by its stop) makes it read and try again.
    /// </summary>
    private async Task CommitAsync(string vmRef, string snapshotRef, IReadOnlyList<DiskCopy> disks, IReadOnlyList<CopiedDisk> copied,
        Dictionary<string, XenObject> snapshotVbds, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            var current = await database.GetAsync(XenClasses.VM, vmRef, cancellationToken);
            var snapshot = await database.GetAsync(XenClasses.VM, snapshotRef, cancellationToken);
            var plan = await PlanAsync(current, snapshot, disks, cancellationToken);
            var tx = new PoolTransaction();
            Write(tx, current, snapshot, plan, copied, snapshotVbds);
            try
            {
                await database.CommitAsync(tx, cancellationToken);
                return;
            }
            catch (ConcurrentUpdateException) when (attempt < 10)
            {
                await Task.Delay(50 * attempt, cancellationToken);
            }
        }
    }

    private static void Write(PoolTransaction tx, XenObject current, XenObject snapshot, Plan plan, IReadOnlyList<CopiedDisk> copied,
        Dictionary<string, XenObject> snapshotVbds)
    {
        var now = DateTime.UtcNow;
        var vm = current.Clone();
        SnapshotRecords.RevertFields(vm, snapshot);
        tx.Update(vm);
        foreach (var old in plan.VmVbds.Concat(plan.Destroyed).Concat(plan.VmVifs))
        {
            tx.Delete(old);
        }

        // The VM's TPMs go, and the snapshot's are copied in (their state as the snapshot holds it), as xapi's revert.
        foreach (var old in plan.VmVtpms)
        {
            VtpmRecords.Delete(tx, old);
        }

        var newByOld = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var copy in copied)
        {
            var vdi = SnapshotRecords.CreateVdi(tx, copy.Disk.Vdi, copy.Disk.NewUuid, copy.Volume.Location, copy.Volume.VirtualSize,
                copy.Volume.PhysicalUtilisation, isSnapshot: false, now);
            SnapshotRecords.CopyVbd(tx, snapshotVbds[copy.Disk.Vdi.Ref], vm.Ref, vdi.Ref, owned: false);
            newByOld[copy.Disk.Vdi.Get(XenApi.VDI.SnapshotOf)] = vdi.Ref;
        }

        foreach (var vbd in plan.SnapshotOthers)
        {
            SnapshotRecords.CopyVbd(tx, vbd, vm.Ref, vbd.Get(XenApi.VBD.VDI), owned: false);
        }

        foreach (var vif in plan.SnapshotVifs)
        {
            SnapshotRecords.CopyVif(tx, vif, vm.Ref);
        }

        foreach (var vtpm in plan.SnapshotVtpms)
        {
            VtpmRecords.CopyInto(tx, vtpm, vm.Ref);
        }

        // Every snapshot of a replaced disk (this one's included) is now a snapshot of its replacement, as in xapi.
        foreach (var other in plan.SnapshotsOfDestroyed)
        {
            var moved = other.Clone();
            moved.Set(XenApi.VDI.SnapshotOf, newByOld.GetValueOrDefault(other.Get(XenApi.VDI.SnapshotOf), OpaqueRef.Null));
            tx.Update(moved);
        }
    }

    private async Task RemoveOldVolumesAsync(Api.Operations.HostOperation operation, IReadOnlyList<DiskCopy> disks, CancellationToken cancellationToken)
    {
        var srs = new List<string>(disks.Select(d => d.Vdi.Get(XenApi.VDI.SR)));
        foreach (var entry in operation.Argument("old_volumes").Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = entry.Split('|', 2);
            await volumes.DestroyVolumeAsync(parts[0], parts[1], cancellationToken);
            srs.Add(parts[0]);
        }

        await volumes.RecordSrsAsync(srs, cancellationToken);
    }

    private async Task<IReadOnlyList<XenObject>> ReadAllAsync(string className, IEnumerable<string> refs, CancellationToken cancellationToken)
    {
        var objects = new List<XenObject>();
        foreach (var r in refs)
        {
            if (await database.TryGetAsync(className, r, cancellationToken) is { } o)
            {
                objects.Add(o);
            }
        }

        return objects;
    }
}
