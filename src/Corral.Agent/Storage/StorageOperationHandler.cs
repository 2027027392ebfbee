using System.Globalization;
using Corral.Agent.Hosting;
using Corral.Agent.Operations;
using Corral.Api.Operations;
using Corral.Api.Methods;
using Corral.Model;
using Corral.PoolDatabase;
using Corral.Storage;

namespace Corral.Agent.Storage;

/// <summary>Volume work on SRs this host has plugged: attach, scan, create, copy, resize, destroy.</summary>
public sealed class StorageOperationHandler(IPoolDatabase database, HostIdentity identity, SrDrivers drivers, SrCatalog catalog, IShareMounts shares)
    : IHostOperationHandler
{
    public IReadOnlyCollection<string> Kinds { get; } =
    [
        HostOperationKinds.SrAttach, HostOperationKinds.SrScan, HostOperationKinds.VdiCreate, HostOperationKinds.VdiDestroy,
        HostOperationKinds.VdiResize, HostOperationKinds.VdiCopy,
    ];

    /// <summary>
    /// The SR's location as this host sees it (<see cref="SrLocation.Of"/> its PBD's device_config), or null when the SR is not plugged
    /// here (<paramref name="requireAttached"/> false: when this host merely has a PBD for it).
    /// </summary>
    public static Task<string?> LocalDirectoryAsync(IPoolDatabase database, XenObject sr, string hostRef, CancellationToken cancellationToken,
        bool requireAttached = true) =>
        Api.Xva.SrDirectories.OfAsync(database, sr, hostRef, requireAttached, cancellationToken);

    public async Task<string?> ExecuteAsync(HostOperation operation, OperationProgress progress, CancellationToken cancellationToken)
    {
        switch (operation.Kind)
        {
            case HostOperationKinds.SrAttach:
                {
                    var sr = await database.GetAsync(XenClasses.SR, operation.Target, cancellationToken);
                    await AttachAsync(sr, operation.Argument("create") == "true", cancellationToken);
                    await ScanAsync(sr, cancellationToken);
                    return null;
                }

            case HostOperationKinds.SrScan:
                await ScanAsync(await database.GetAsync(XenClasses.SR, operation.Target, cancellationToken), cancellationToken);
                return null;
            case HostOperationKinds.VdiCreate:
                return await CreateVdiAsync(operation, cancellationToken);
            case HostOperationKinds.VdiDestroy:
                {
                    var (vdi, sr, driver, directory) = await VolumeAsync(operation.Target, cancellationToken);
                    await driver.DestroyAsync(directory, vdi.Get(XenApi.VDI.Location), cancellationToken);
                    var tx = new PoolTransaction();
                    tx.Delete(vdi);
                    await database.CommitAsync(tx, cancellationToken);
                    await catalog.UpdateUsageAsync(sr, directory, cancellationToken);
                    await catalog.WriteMetadataAsync(sr.Ref, directory, cancellationToken);
                    return null;
                }

            case HostOperationKinds.VdiResize:
                {
                    var (vdi, sr, driver, directory) = await VolumeAsync(operation.Target, cancellationToken);
                    var info = await driver.ResizeAsync(directory, vdi.Get(XenApi.VDI.Location), long.Parse(operation.Argument("size"), CultureInfo.InvariantCulture), cancellationToken);
                    await database.UpdateAsync([(XenClasses.VDI, vdi.Ref)], (objs, tx) =>
                    {
                        var v = objs[0].Clone();
                        v.Set(XenApi.VDI.VirtualSize, info.VirtualSize);
                        v.Set(XenApi.VDI.PhysicalUtilisation, info.PhysicalUtilisation);
                        v.Set(XenApi.VDI.Location, info.Location); // an iSCSI extent's location names its offset and size
                        tx.Update(v);
                    }, cancellationToken);
                    await catalog.UpdateUsageAsync(sr, directory, cancellationToken);
                    await catalog.WriteMetadataAsync(sr.Ref, directory, cancellationToken);
                    return null;
                }

            case HostOperationKinds.VdiCopy:
                return await CopyVdiAsync(operation, progress, cancellationToken);
            default:
                throw new XenApiException(ErrorCodes.NotImplemented, operation.Kind);
        }
    }

    private async Task<(XenObject Vdi, XenObject Sr, ISrDriver Driver, string Directory)> VolumeAsync(string vdiRef, CancellationToken cancellationToken)
    {
        var vdi = await database.GetAsync(XenClasses.VDI, vdiRef, cancellationToken);
        var sr = await database.GetAsync(XenClasses.SR, vdi.Get(XenApi.VDI.SR), cancellationToken);
        var directory = await LocalDirectoryAsync(database, sr, identity.Ref, cancellationToken)
                        ?? throw new XenApiException(ErrorCodes.SrHasNoPbds, sr.Ref);
        return (vdi, sr, drivers.Get(sr.Get(XenApi.SR.Type)), directory);
    }

    /// <summary>
    /// Plugs a new SR's PBD on this host: the directory proven usable (made, for SR.create), holding no other SR, then
    /// the PBD attached and the SR scanned (which writes its metadata).
    /// </summary>
    private async Task AttachAsync(XenObject sr, bool create, CancellationToken cancellationToken)
    {
        var directory = await LocalDirectoryAsync(database, sr, identity.Ref, cancellationToken, requireAttached: false)
                        ?? throw new XenApiException(ErrorCodes.SrHasNoPbds, sr.Ref);
        var mine = new List<XenObject>();
        foreach (var pbdRef in sr.Get(XenApi.SR.PBDs))
        {
            if (await database.GetAsync(XenClasses.PBD, pbdRef, cancellationToken) is var pbd && pbd.Get(XenApi.PBD.Host) == identity.Ref)
            {
                mine.Add(pbd);
            }
        }

        if (mine.Count > 0)
        {
            await shares.MountIfShareAsync(directory, await DeviceConfigSecrets.ResolveAsync(database, mine[0].Get(XenApi.PBD.DeviceConfig), cancellationToken),
                cancellationToken);
        }

        await drivers.Get(sr.Get(XenApi.SR.Type)).ProbeAsync(directory, create, cancellationToken);
        await catalog.RequireOwnMetadataAsync(sr, directory, create, cancellationToken);
        foreach (var pbd in mine.Where(m => !m.Get(XenApi.PBD.CurrentlyAttached)))
        {
            await database.UpdateAsync([(XenClasses.PBD, pbd.Ref)], (objs, tx) =>
            {
                var p = objs[0].Clone();
                p.Set(XenApi.PBD.CurrentlyAttached, true);
                tx.Update(p);
            }, cancellationToken);
        }
    }

    private async Task ScanAsync(XenObject sr, CancellationToken cancellationToken)
    {
        var directory = await LocalDirectoryAsync(database, sr, identity.Ref, cancellationToken)
                        ?? throw new XenApiException(ErrorCodes.SrHasNoPbds, sr.Ref);
        await catalog.ScanAsync(await database.GetAsync(XenClasses.SR, sr.Ref, cancellationToken), directory, cancellationToken);
    }

    private async Task<string> CreateVdiAsync(HostOperation operation, CancellationToken cancellationToken)
    {
        var sr = await database.GetAsync(XenClasses.SR, operation.Target, cancellationToken);
        var directory = await LocalDirectoryAsync(database, sr, identity.Ref, cancellationToken)
                        ?? throw new XenApiException(ErrorCodes.SrHasNoPbds, sr.Ref);
        var driver = drivers.Get(sr.Get(XenApi.SR.Type));
        var usage = await driver.GetUsageAsync(directory, cancellationToken);
        var size = long.Parse(operation.Argument("size"), CultureInfo.InvariantCulture);
        // qcow2 grows on demand, but a disk larger than the whole SR can never be filled: refuse it as SR_FULL.
        if (size > usage.PhysicalSize)
        {
            throw new XenApiException(ErrorCodes.SrFull, size.ToString(CultureInfo.InvariantCulture), usage.PhysicalSize.ToString(CultureInfo.InvariantCulture));
        }

        var uuid = OpaqueRef.NewUuid();
        var info = await driver.CreateAsync(directory, uuid, size, cancellationToken);
        var tx = new PoolTransaction();
        var vdi = tx.Create(XenClasses.VDISchema);
        vdi.Set(XenApi.VDI.Uuid, uuid);
        vdi.Set(XenApi.VDI.NameLabel, operation.Argument("name_label"));
        vdi.Set(XenApi.VDI.NameDescription, operation.Argument("name_description"));
        vdi.Set(XenApi.VDI.SR, sr.Ref);
        vdi.Set(XenApi.VDI.Location, info.Location);
        vdi.Set(XenApi.VDI.VirtualSize, info.VirtualSize);
        vdi.Set(XenApi.VDI.PhysicalUtilisation, info.PhysicalUtilisation);
        vdi.Set(XenApi.VDI.Type, XenApi.VDI.Type.Read(operation.Argument("type", "user")));
        vdi.Set(XenApi.VDI.Sharable, operation.Argument("sharable") == "true");
        vdi.Set(XenApi.VDI.ReadOnly, operation.Argument("read_only") == "true");
        vdi.Set(XenApi.VDI.Managed, true);
        await database.CommitAsync(tx, cancellationToken);
        await catalog.UpdateUsageAsync(sr, directory, cancellationToken);
        await catalog.WriteMetadataAsync(sr.Ref, directory, cancellationToken);
        return vdi.Ref;
    }

    private async Task<string> CopyVdiAsync(HostOperation operation, OperationProgress progress, CancellationToken cancellationToken)
    {
        var (source, _, sourceDriver, sourceDirectory) = await VolumeAsync(operation.Target, cancellationToken);
        var target = await database.GetAsync(XenClasses.SR, operation.Argument("sr"), cancellationToken);
        var targetDirectory = await LocalDirectoryAsync(database, target, identity.Ref, cancellationToken)
                              ?? throw new XenApiException(ErrorCodes.SrHasNoPbds, target.Ref);
        var targetDriver = drivers.Get(target.Get(XenApi.SR.Type));
        // The new uuid is persisted before copying, so a resumed copy reuses it rather than leaving an orphan file.
        var uuid = operation.Argument("new_uuid");
        if (string.IsNullOrEmpty(uuid))
        {
            uuid = OpaqueRef.NewUuid();
            await progress.StepAsync("copying", cancellationToken, new Dictionary<string, string> { ["new_uuid"] = uuid });
        }

        var sourcePath = sourceDriver.Resolve(sourceDirectory, source.Get(XenApi.VDI.Location)).Path;
        var info = await targetDriver.CopyAsync(sourcePath, targetDirectory, uuid, cancellationToken);
        var tx = new PoolTransaction();
        var copy = tx.Create(XenClasses.VDISchema);
        copy.Set(XenApi.VDI.Uuid, uuid);
        copy.Set(XenApi.VDI.NameLabel, source.Get(XenApi.VDI.NameLabel));
        copy.Set(XenApi.VDI.NameDescription, source.Get(XenApi.VDI.NameDescription));
        copy.Set(XenApi.VDI.SR, target.Ref);
        copy.Set(XenApi.VDI.Location, info.Location);
        copy.Set(XenApi.VDI.VirtualSize, info.VirtualSize);
        copy.Set(XenApi.VDI.PhysicalUtilisation, info.PhysicalUtilisation);
        copy.Set(XenApi.VDI.Type, source.Get(XenApi.VDI.Type));
        copy.Set(XenApi.VDI.OtherConfig, source.Get(XenApi.VDI.OtherConfig));
        copy.Set(XenApi.VDI.Managed, true);
        await database.CommitAsync(tx, cancellationToken);
        await catalog.UpdateUsageAsync(target, targetDirectory, cancellationToken);
        await catalog.WriteMetadataAsync(target.Ref, targetDirectory, cancellationToken);
        return copy.Ref;
    }
}
