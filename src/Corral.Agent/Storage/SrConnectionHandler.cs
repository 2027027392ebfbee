using System.Text.Json;
using Corral.Agent.Hosting;
using Corral.Agent.Operations;
using Corral.Api.Methods;
using Corral.Api.Operations;
using Corral.Model;
using Corral.PoolDatabase;
using Corral.Storage;
using Corral.Storage.Nfs;

namespace Corral.Agent.Storage;

/// <summary>
/// An SR's connection to this host: PBD.plug (the SR's storage proven reachable through its driver, the PBD attached,
/// the SR scanned), PBD.unplug (the SR's metadata written, the PBD released, the lockspace of its VM leases left and
/// their volume's export stopped; refused while a VM running here uses one of its VDIs), SR.probe (which SRs a location
/// holds) and SR.destroy's part on the storage.
/// </summary>
public sealed class SrConnectionHandler(IPoolDatabase database, HostIdentity identity, SrDrivers drivers, SrCatalog catalog,
    IShareMounts shares, VmLeases leases, ILogger<SrConnectionHandler> logger) : IHostOperationHandler
{
    public IReadOnlyCollection<string> Kinds { get; } =
        [HostOperationKinds.PbdPlug, HostOperationKinds.PbdUnplug, HostOperationKinds.SrProbe, HostOperationKinds.SrDestroy];

    public async Task<string?> ExecuteAsync(HostOperation operation, OperationProgress progress, CancellationToken cancellationToken)
    {
        switch (operation.Kind)
        {
            case HostOperationKinds.PbdPlug:
                await PlugAsync(operation.Argument("pbd"), cancellationToken);
                return null;
            case HostOperationKinds.PbdUnplug:
                await UnplugAsync(operation.Argument("pbd"), cancellationToken);
                return null;
            case HostOperationKinds.SrProbe:
                {
                    var deviceConfig = JsonSerializer.Deserialize<Dictionary<string, string>>(operation.Argument("device_config", "{}")) ?? [];
                    deviceConfig = await HostDeviceConfig.ResolveAsync(database, deviceConfig, identity.Ref, cancellationToken);
                    var found = await drivers.Get(operation.Argument("type")).ProbeSrsAsync(deviceConfig, cancellationToken);
                    return JsonSerializer.Serialize(found);
                }

            case HostOperationKinds.SrDestroy:
                await DestroyAsync(operation.Target, cancellationToken);
                return null;
            default:
                throw new XenApiException(ErrorCodes.NotImplemented, operation.Kind);
        }
    }

    /// <summary>The PBD of this host, its SR, the SR's directory here, and the PBD's device_config with its secrets' values.</summary>
    private async Task<(XenObject Pbd, XenObject Sr, string Directory, Dictionary<string, string> Config)> PbdAsync(string pbdRef, CancellationToken cancellationToken)
    {
        var pbd = await database.GetAsync(XenClasses.PBD, pbdRef, cancellationToken);
        if (pbd.Get(XenApi.PBD.Host) != identity.Ref)
        {
            throw new XenApiException(ErrorCodes.InternalError, $"PBD {pbdRef} is not this host's");
        }

        var sr = await database.GetAsync(XenClasses.SR, pbd.Get(XenApi.PBD.SR), cancellationToken);
        var config = await HostDeviceConfig.ResolveAsync(database, pbd.Get(XenApi.PBD.DeviceConfig), identity.Ref, cancellationToken);
        if (sr.Get(XenApi.SR.Type) is NfsSrDriver.TypeName or Corral.Storage.Iscsi.IscsiSrDriver.TypeName)
        {
            // SM's own errors for what an NFS or iSCSI PBD lacks (a file SR's missing location stays the error below).
            drivers.Get(sr.Get(XenApi.SR.Type)).CheckDeviceConfig(config);
        }

        var directory = SrLocation.Of(config, sr.Uuid);
        return string.IsNullOrWhiteSpace(directory) ? throw SrBackend.LocationMissing() : (pbd, sr, directory, config);
    }

    private async Task PlugAsync(string pbdRef, CancellationToken cancellationToken)
    {
        var (pbd, sr, directory, config) = await PbdAsync(pbdRef, cancellationToken);
        if (pbd.Get(XenApi.PBD.CurrentlyAttached))
        {
            return;
        }

        var driver = drivers.Get(sr.Get(XenApi.SR.Type));
        if (await PbdMethods.PluggedElsewhereAsync(database, sr, pbd, cancellationToken) is { } other)
        {
            throw new XenApiException(ErrorCodes.SrNotSharable, sr.Ref, other);
        }

        await shares.MountIfShareAsync(directory, config, cancellationToken);
        await driver.ProbeAsync(directory, create: false, cancellationToken);
        await catalog.RequireOwnMetadataAsync(sr, directory, creating: false, cancellationToken);
        await SetAttachedAsync(pbd.Ref, true, cancellationToken);
        // The first look at the storage: an SR introduced again finds its VDIs here, under the uuids and names it kept.
        await catalog.ScanAsync(await database.GetAsync(XenClasses.SR, sr.Ref, cancellationToken), directory, cancellationToken);
        logger.LogInformation("SR {Sr} plugged on this host ({Directory})", sr.Get(XenApi.SR.NameLabel), directory);
    }

    private async Task UnplugAsync(string pbdRef, CancellationToken cancellationToken)
    {
        var (pbd, sr, directory, _) = await PbdAsync(pbdRef, cancellationToken);
        if (!pbd.Get(XenApi.PBD.CurrentlyAttached))
        {
            return;
        }

        var inUse = await PbdMethods.VdisInUseAsync(database, sr.Ref, identity.Ref, cancellationToken);
        if (inUse.Count > 0)
        {
            throw new XenApiException(ErrorCodes.VdiInUse, [.. inUse]);
        }

        // A local directory gone (its mount lost) has nowhere to write; an NFS or iSCSI SR's driver reports its own failure.
        if (NfsUrl.IsNfs(directory) || IscsiLocation.IsIscsi(directory) || Directory.Exists(directory))
        {
            // What the pool database knows of the SR goes with it: names given since the last change are kept too.
            await catalog.WriteMetadataAsync(sr.Ref, directory, cancellationToken);
        }

        await SetAttachedAsync(pbd.Ref, false, cancellationToken);
        // Its VM leases' lockspace left and their volume's export stopped (else the keeper's next pass does).
        await leases.ReleaseAsync(sr.Uuid, cancellationToken);
        await shares.UnmountIfShareAsync(directory, cancellationToken);
        logger.LogInformation("SR {Sr} unplugged from this host", sr.Get(XenApi.SR.NameLabel));
    }

    /// <summary>SR.destroy's part on the storage, on a host with a PBD for the SR (plugged or not): the driver removes the SR's own files.</summary>
    private async Task DestroyAsync(string srRef, CancellationToken cancellationToken)
    {
        var sr = await database.GetAsync(XenClasses.SR, srRef, cancellationToken);
        var directory = await StorageOperationHandler.LocalDirectoryAsync(database, sr, identity.Ref, cancellationToken, requireAttached: false)
                        ?? throw new XenApiException(ErrorCodes.SrHasNoPbds, sr.Ref);
        await drivers.Get(sr.Get(XenApi.SR.Type)).DeleteAsync(directory, cancellationToken);
        logger.LogInformation("SR {Sr} destroyed on its storage ({Directory})", sr.Get(XenApi.SR.NameLabel), directory);
    }

    private async Task SetAttachedAsync(string pbdRef, bool attached, CancellationToken cancellationToken) =>
        await database.UpdateAsync([(XenClasses.PBD, pbdRef)], (objs, tx) =>
        {
            if (objs[0].Get(XenApi.PBD.CurrentlyAttached) != attached)
            {
                var p = objs[0].Clone();
                p.Set(XenApi.PBD.CurrentlyAttached, attached);
                tx.Update(p);
            }
        }, cancellationToken);
}
