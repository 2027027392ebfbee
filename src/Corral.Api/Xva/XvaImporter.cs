using Corral.Api.Sessions;
using Corral.Model;
using Corral.PoolDatabase;
using Corral.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Corral.Api.Xva;

/// <summary>How one import goes: into which SR, keeping uuids (<c>restore=true</c>), ignoring checksums (<c>force=true</c>).</summary>
public sealed record XvaImportOptions(string SrRef, bool Restore, bool Force, string TaskRef);

/// <summary>
/// VM import as xapi's import.ml does it for a full XVA: each disk streamed into a new volume of the SR, then the VMs,
/// their VDIs, VBDs, VIFs (on the networks matched by name, else by bridge, else made), and VTPMs (with the exported
/// TPM contents) created in one transaction, so that a failure leaves nothing: the volumes written so far are removed.
/// The result is the new VMs (the snapshots among them only when nothing else was imported).
/// </summary>
public sealed class XvaImporter(IPoolDatabase database, SrDrivers drivers, IOptions<ApiOptions> options, ILogger<XvaImporter> logger)
{
    public async Task<IReadOnlyList<string>> ImportAsync(XvaReader reader, XvaImportOptions import, Action<double> progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentNullException.ThrowIfNull(import);
        var sr = await database.GetArgumentAsync(XenClasses.SR, import.SrRef, cancellationToken);
        var directory = await SrDirectories.OnHostAsync(database, sr.Ref, options.Value.HostRef, cancellationToken)
                        ?? throw new XenApiException(ErrorCodes.SrHasNoPbds, sr.Ref);
        var driver = drivers.Get(sr.Get(XenApi.SR.Type));
        reader.Header.Version.AssertImportable();
        var plan = XvaImportPlan.Of(reader.Header);
        await CheckRestoreAsync(plan, import, cancellationToken);
        var volumes = new List<(string Id, string Uuid)>();
        var committed = false;
        try
        {
            var total = Math.Max(1, plan.Disks.Sum(d => d.VirtualSize));
            long before = 0;
            foreach (var disk in plan.Disks)
            {
                var uuid = OpaqueRef.NewUuid();
                volumes.Add((disk.Id, uuid));
                await ReceiveDiskAsync(reader, disk, driver, directory, uuid, import.Force, done => progress(0.95 * (before + done) / total), cancellationToken);
                before += disk.VirtualSize;
            }

            var infos = new Dictionary<string, VolumeInfo>(StringComparer.Ordinal);
            foreach (var (id, uuid) in volumes)
            {
                infos[id] = await driver.PartialInfoAsync(directory, uuid, cancellationToken);
            }

            var created = await CreateRecordsAsync(plan, import, volumes.ToDictionary(v => v.Id, v => v.Uuid, StringComparer.Ordinal), infos, cancellationToken);
            committed = true;
            foreach (var (_, uuid) in volumes)
            {
                await driver.CompletePartialAsync(directory, uuid, cancellationToken);
            }

            logger.LogInformation(XvaEvents.Imported, "Imported {Count} VM(s) and {Disks} disk(s) into SR {Sr}", created.Count, volumes.Count, sr.Get(XenApi.SR.NameLabel));
            return created;
        }
        catch (Exception ex) when (!committed)
        {
            logger.LogWarning(XvaEvents.ImportFailed, ex, "Import into SR {Sr} failed; removing the {Count} volume(s) it wrote", sr.Get(XenApi.SR.NameLabel), volumes.Count);
            foreach (var (_, uuid) in volumes)
            {
                await DiscardAsync(driver, directory, uuid);
            }

            throw;
        }
    }

    /// <summary>A disk's chunks written into a sparse raw file in the SR's directory, then converted into the new (partial) volume.</summary>
    private static async Task ReceiveDiskAsync(XvaReader reader, XvaImportDisk disk, ISrDriver driver, string directory, string uuid, bool force,
        Action<long> progress, CancellationToken cancellationToken)
    {
        var raw = Path.Combine(SrDirectories.ScratchFor(directory), $".xva-import-{uuid}.raw");
        try
        {
            await using (var image = new FileStream(raw, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16, useAsync: true))
            {
                image.SetLength(disk.VirtualSize);
                await reader.ReadDiskAsync(disk.Id, disk.VirtualSize, image, force, cancellationToken, progress);
            }

            var (path, format) = await driver.CreatePartialAsync(directory, uuid, disk.VirtualSize, cancellationToken);
            // -f raw: the guest's bytes are never probed for an image format; -n into the empty volume just made.
            await XvaExporter.QemuImgAsync(cancellationToken, "convert", "-n", "--target-is-zero", "-f", "raw", "-O", format, raw, path);
        }
        finally
        {
            File.Delete(raw);
        }
    }

    private async Task DiscardAsync(ISrDriver driver, string directory, string uuid)
    {
        try
        {
            await driver.DiscardAsync(directory, uuid, CancellationToken.None);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or XenApiException)
        {
            logger.LogError(XvaEvents.CleanupFailed, ex, "Could not remove the volume {Uuid} of a failed import from {Directory}", uuid, directory);
        }
    }

    /// <summary>
    /// restore=true keeps the VMs' uuids: refused as xapi refuses it when a VM of that uuid is not halted
    /// (VM_BAD_POWER_STATE) or is not older (VM_TO_IMPORT_IS_NOT_NEWER_VERSION) unless forced; a halted older one is
    /// replaced (its VBDs, VIFs and VTPMs go with it, not its disks).
    /// </summary>
    private async Task CheckRestoreAsync(XvaImportPlan plan, XvaImportOptions import, CancellationToken cancellationToken)
    {
        if (!import.Restore)
        {
            return;
        }

        foreach (var vm in plan.Vms)
        {
            if (await database.FindByUuidAsync(XenClasses.VM, XvaImportRecords.Text(vm.Snapshot, "uuid"), cancellationToken) is not { } existing)
            {
                continue;
            }

            var state = existing.Get(XenApi.VM.PowerState);
            if (state != VmPowerState.Halted)
            {
                throw new XenApiException(ErrorCodes.VmBadPowerState, existing.Ref, "halted", AllowedOperations.VmOperationRules.Lower(state));
            }

            var version = long.TryParse(XvaImportRecords.Text(vm.Snapshot, "version"), System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var v) ? v : 0;
            if (existing.Get(XenApi.VM.Version) >= version && !import.Force)
            {
                throw new XenApiException("VM_TO_IMPORT_IS_NOT_NEWER_VERSION", existing.Ref, existing.Get(XenApi.VM.Version).ToString(System.Globalization.CultureInfo.InvariantCulture),
                    version.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
        }
    }

    private async Task<IReadOnlyList<string>> CreateRecordsAsync(XvaImportPlan plan, XvaImportOptions import, IReadOnlyDictionary<string, string> volumeUuids,
        IReadOnlyDictionary<string, VolumeInfo> infos, CancellationToken cancellationToken)
    {
        if (import.Restore)
        {
            // The VM replaced goes first, in a write of its own: the new record takes its uuid, which one write
            // cannot both free and take.
            var replaced = new PoolTransaction();
            await ReplaceExistingAsync(replaced, plan, cancellationToken);
            if (!replaced.IsEmpty)
            {
                await database.CommitAsync(replaced, cancellationToken);
            }
        }

        var tx = new PoolTransaction();
        var table = new Dictionary<string, string>(StringComparer.Ordinal);

        foreach (var vdi in plan.Vdis.Where(v => volumeUuids.ContainsKey(v.Id)))
        {
            var info = infos[vdi.Id];
            table[vdi.Id] = XvaImportRecords.CreateVdi(tx, vdi.Snapshot, import.SrRef, volumeUuids[vdi.Id], info.Location, info.VirtualSize, info.PhysicalUtilisation).Ref;
        }

        var createdVms = new List<XenObject>();
        foreach (var vm in plan.Vms)
        {
            var created = XvaImportRecords.CreateVm(tx, vm.Snapshot, import.Restore, import.TaskRef);
            table[vm.Id] = created.Ref;
            createdVms.Add(created);
        }

        await new XvaImportDevices(database, logger).CreateAsync(tx, plan, import, table, cancellationToken);
        await database.CommitAsync(tx, cancellationToken);
        var vms = createdVms.Where(v => !v.Get(XenApi.VM.IsASnapshot)).ToList();
        return (vms.Count > 0 ? vms : createdVms).Select(v => v.Ref).ToList();
    }

    private async Task ReplaceExistingAsync(PoolTransaction tx, XvaImportPlan plan, CancellationToken cancellationToken)
    {
        foreach (var vm in plan.Vms)
        {
            if (await database.FindByUuidAsync(XenClasses.VM, XvaImportRecords.Text(vm.Snapshot, "uuid"), cancellationToken) is not { } existing)
            {
                continue;
            }

            foreach (var reference in existing.Get(XenApi.VM.VBDs).Concat(existing.Get(XenApi.VM.VIFs)))
            {
                if (await database.FindClassOfAsync(reference, cancellationToken) is { } cls && await database.TryGetAsync(cls, reference, cancellationToken) is { } device)
                {
                    tx.Delete(device);
                }
            }

            foreach (var vtpm in await Methods.VtpmRecords.ReadAsync(database, existing, cancellationToken))
            {
                Methods.VtpmRecords.Delete(tx, vtpm);
            }

            if (await database.TryGetAsync(XenClasses.VMMetrics, existing.Get(XenApi.VM.Metrics), cancellationToken) is { } metrics)
            {
                tx.Delete(metrics);
            }

            tx.Delete(existing);
        }
    }
}
