using Corral.Agent.Hosting;
using Corral.Agent.Storage;
using Corral.Api.Devices;
using Corral.Hypervisor;
using Corral.Model;
using Corral.PoolDatabase;
using Corral.Storage;

namespace Corral.Agent.Vms;

/// <summary>One disk to copy: the VDI, its new volume's uuid, and (for a running VM) the disk's index in the guest.</summary>
public sealed record DiskCopy(XenObject Vdi, string NewUuid, int? DiskIndex);

/// <summary>A copy made: the new volume, in the SR of its source.</summary>
public sealed record CopiedDisk(DiskCopy Disk, VolumeInfo Volume);

/// <summary>
/// The volumes of snapshots and reverts on this host: copies of halted disks by the SR driver, of a running VM's disks by
/// its QEMU (all at one instant); and their removal when an operation is abandoned.
/// </summary>
public sealed class SnapshotVolumes(IPoolDatabase database, HostIdentity identity, SrDrivers drivers, SrCatalog catalog, ILogger<SnapshotVolumes> logger)
{
    /// <summary>The SR's driver and directory here.</summary>
    public async Task<(XenObject Sr, ISrDriver Driver, string Directory)> SrAsync(string srRef, CancellationToken cancellationToken)
    {
        var sr = await database.GetAsync(XenClasses.SR, srRef, cancellationToken);
        var driver = drivers.Get(sr.Get(XenApi.SR.Type));
        if (!driver.Features.Contains("VDI_SNAPSHOT"))
        {
            throw new XenApiException(ErrorCodes.SrOperationNotSupported, sr.Ref);
        }

        var directory = await StorageOperationHandler.LocalDirectoryAsync(database, sr, identity.Ref, cancellationToken)
                        ?? throw new XenApiException(ErrorCodes.SrHasNoPbds, sr.Ref);
        return (sr, driver, directory);
    }

    /// <summary>
    /// Copies the disks into partial volumes (which an SR scan never adopts): through <paramref name="process"/> (the VM
    /// running here) when given, all at one instant, else each volume file by the SR driver. The volumes become the
    /// VDIs' (<see cref="CompleteAsync"/>) once their records are written. On failure nothing is left.
    /// </summary>
    public async Task<IReadOnlyList<CopiedDisk>> CopyAsync(IReadOnlyList<DiskCopy> disks, IVmProcess? process, bool quiesce, CancellationToken cancellationToken)
    {
        try
        {
            return process is null ? await CopyOfflineAsync(disks, cancellationToken) : await CopyLiveAsync(disks, process, quiesce, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            await DiscardAsync(disks, process, CancellationToken.None);
            throw;
        }
    }

    private async Task<IReadOnlyList<CopiedDisk>> CopyOfflineAsync(IReadOnlyList<DiskCopy> disks, CancellationToken cancellationToken)
    {
        var copied = new List<CopiedDisk>();
        foreach (var disk in disks)
        {
            var (_, driver, directory) = await SrAsync(disk.Vdi.Get(XenApi.VDI.SR), cancellationToken);
            var source = driver.Resolve(directory, disk.Vdi.Get(XenApi.VDI.Location)).Path;
            await driver.CopyToPartialAsync(source, directory, disk.NewUuid, cancellationToken);
            copied.Add(new CopiedDisk(disk, await driver.PartialInfoAsync(directory, disk.NewUuid, cancellationToken)));
        }

        return copied;
    }

    private async Task<IReadOnlyList<CopiedDisk>> CopyLiveAsync(IReadOnlyList<DiskCopy> disks, IVmProcess process, bool quiesce, CancellationToken cancellationToken)
    {
        var targets = new List<DiskBackupTarget>();
        foreach (var disk in disks)
        {
            var (_, driver, directory) = await SrAsync(disk.Vdi.Get(XenApi.VDI.SR), cancellationToken);
            var (path, format) = await driver.CreatePartialAsync(directory, disk.NewUuid, disk.Vdi.Get(XenApi.VDI.VirtualSize), cancellationToken);
            targets.Add(new DiskBackupTarget(disk.DiskIndex ?? throw new XenApiException(ErrorCodes.InternalError, $"VDI {disk.Vdi.Ref} is not attached"), path, format));
        }

        try
        {
            await process.BackupDisksAsync(targets, quiesce, cancellationToken);
        }
        catch (DiskBackupException ex)
        {
            throw new XenApiException(ErrorCodes.SrBackendFailure, "SR_BACKEND_FAILURE_SNAPSHOT", "", ex.Message);
        }

        var copied = new List<CopiedDisk>();
        foreach (var disk in disks)
        {
            var (_, driver, directory) = await SrAsync(disk.Vdi.Get(XenApi.VDI.SR), cancellationToken);
            copied.Add(new CopiedDisk(disk, await driver.PartialInfoAsync(directory, disk.NewUuid, cancellationToken)));
        }

        return copied;
    }

    /// <summary>The copies, their records written, take their real names. Safe to repeat (a resumed operation does).</summary>
    public async Task CompleteAsync(IReadOnlyList<DiskCopy> disks, CancellationToken cancellationToken)
    {
        foreach (var disk in disks)
        {
            var (_, driver, directory) = await SrAsync(disk.Vdi.Get(XenApi.VDI.SR), cancellationToken);
            await driver.CompletePartialAsync(directory, disk.NewUuid, cancellationToken);
        }
    }

    /// <summary>
    /// Removes what an abandoned copy left: the QEMU jobs and open images of a running VM, and the new volumes, whether
    /// partial or complete. Safe to repeat.
    /// </summary>
    public async Task DiscardAsync(IReadOnlyList<DiskCopy> disks, IVmProcess? process, CancellationToken cancellationToken)
    {
        logger.LogInformation(SnapshotEvents.Discarded, "Removing the copies {Volumes}", string.Join(", ", disks.Select(d => d.NewUuid)));
        if (process is not null)
        {
            try
            {
                await process.AbandonDiskBackupsAsync(cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                logger.LogWarning(ex, "VM {Vm}: ending its snapshot jobs failed", process.VmUuid);
            }
        }

        foreach (var disk in disks)
        {
            var sr = await database.GetAsync(XenClasses.SR, disk.Vdi.Get(XenApi.VDI.SR), cancellationToken);
            var directory = await StorageOperationHandler.LocalDirectoryAsync(database, sr, identity.Ref, cancellationToken);
            if (directory is not null)
            {
                await drivers.Get(sr.Get(XenApi.SR.Type)).DiscardAsync(directory, disk.NewUuid, cancellationToken);
            }
        }
    }

    /// <summary>The SRs' usage and metadata files after volumes came or went.</summary>
    public async Task RecordSrsAsync(IEnumerable<string> srRefs, CancellationToken cancellationToken)
    {
        foreach (var srRef in srRefs.Distinct())
        {
            var sr = await database.GetAsync(XenClasses.SR, srRef, cancellationToken);
            if (await StorageOperationHandler.LocalDirectoryAsync(database, sr, identity.Ref, cancellationToken) is { } directory)
            {
                await catalog.UpdateUsageAsync(sr, directory, cancellationToken);
                await catalog.WriteMetadataAsync(sr.Ref, directory, cancellationToken);
            }
        }
    }

    /// <summary>Removes a volume whose VDI record is gone (a disk a revert replaced).</summary>
    public async Task DestroyVolumeAsync(string srRef, string location, CancellationToken cancellationToken)
    {
        var sr = await database.TryGetAsync(XenClasses.SR, srRef, cancellationToken);
        var directory = sr is null ? null : await StorageOperationHandler.LocalDirectoryAsync(database, sr, identity.Ref, cancellationToken);
        if (sr is null || directory is null)
        {
            logger.LogWarning(SnapshotEvents.VolumeUnreachable, "The volume {Location} of SR {Sr} is not reachable from this host: left in place", location, srRef);
            return;
        }

        await drivers.Get(sr.Get(XenApi.SR.Type)).DestroyAsync(directory, location, cancellationToken);
    }

    public static int? DiskIndexOf(XenObject vbd) => DeviceNumbers.DiskIndex(vbd.Get(XenApi.VBD.Userdevice));
}
