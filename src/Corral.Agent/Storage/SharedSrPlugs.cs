using Corral.Agent.Hosting;
using Corral.Api.Methods;
using Corral.Model;
using Corral.PoolDatabase;
using Corral.Storage;

namespace Corral.Agent.Storage;

/// <summary>
/// A host in a pool sees every shared SR, as a XenServer pool member plugs the pool's NFS SRs when it joins: at each
/// agent start, a shared SR without a PBD of this host gets one with the same device_config as the other hosts',
/// attached once the SR's storage proves usable from here (a directory SR's directory exists; an NFS SR's directory on
/// the export mounts and takes a write, and an iSCSI SR's LUN is found and read, through their drivers; an ISO
/// library's share mounts). One that does not stays unattached, for <c>PBD.plug</c> once the storage is reachable, and
/// says why. The shares of this host's attached PBDs are mounted again (after a reboot, the mounts are gone).
/// </summary>
public sealed class SharedSrPlugs(IPoolDatabase database, HostIdentity identity, SrDrivers drivers, IShareMounts shares, ILogger<SharedSrPlugs> logger)
{
    public static readonly EventId Plugged = new(2410, "SharedSrPlugged");
    public static readonly EventId NotReachable = new(2411, "SharedSrNotReachable");

    public async Task PlugAllAsync(CancellationToken cancellationToken)
    {
        var pbds = await database.GetAllAsync(XenClasses.PBD, cancellationToken);
        var srs = await database.GetAllAsync(XenClasses.SR, cancellationToken);
        await MountSharesAsync(srs, pbds, cancellationToken);
        foreach (var sr in srs)
        {
            if (!sr.Get(XenApi.SR.Shared) || pbds.Any(p => p.Get(XenApi.PBD.SR) == sr.Ref && p.Get(XenApi.PBD.Host) == identity.Ref))
            {
                continue;
            }

            if (pbds.FirstOrDefault(p => p.Get(XenApi.PBD.SR) == sr.Ref) is { } model)
            {
                await PlugAsync(sr, model.Get(XenApi.PBD.DeviceConfig), cancellationToken);
            }
        }
    }

    /// <summary>A PBD of this host for the SR, with the other hosts' device_config (its secrets copies of its own), plugged if the SR is reachable.</summary>
    private async Task PlugAsync(XenObject sr, IReadOnlyDictionary<string, string> deviceConfig, CancellationToken cancellationToken)
    {
        var why = await UnusableAsync(sr, await HostDeviceConfig.ResolveAsync(database, deviceConfig, identity.Ref, cancellationToken), cancellationToken);
        var tx = new PoolTransaction();
        var pbd = tx.Create(XenClasses.PBDSchema);
        pbd.Set(XenApi.PBD.Host, identity.Ref);
        pbd.Set(XenApi.PBD.SR, sr.Ref);
        pbd.Set(XenApi.PBD.DeviceConfig, await DeviceConfigSecrets.ForNewPbdAsync(database, tx, deviceConfig, cancellationToken));
        pbd.Set(XenApi.PBD.CurrentlyAttached, why is null);
        await database.CommitAsync(tx, cancellationToken);
        if (why is null)
        {
            logger.LogInformation(Plugged, "Plugged shared SR {Sr} (attached)", sr.Get(XenApi.SR.NameLabel));
        }
        else
        {
            logger.LogWarning(NotReachable, "Shared SR {Sr} has a PBD on this host, unattached: {Reason} (PBD.plug once it is reachable)",
                sr.Get(XenApi.SR.NameLabel), why);
        }
    }

    /// <summary>The shares of this host's attached PBDs mounted again; one that will not mount is said, its PBD left as it is.</summary>
    private async Task MountSharesAsync(IReadOnlyList<XenObject> srs, IReadOnlyList<XenObject> pbds, CancellationToken cancellationToken)
    {
        foreach (var pbd in pbds.Where(p => p.Get(XenApi.PBD.Host) == identity.Ref && p.Get(XenApi.PBD.CurrentlyAttached)))
        {
            var sr = srs.FirstOrDefault(s => s.Ref == pbd.Get(XenApi.PBD.SR));
            var config = await HostDeviceConfig.ResolveAsync(database, pbd.Get(XenApi.PBD.DeviceConfig), identity.Ref, cancellationToken);
            if (sr is not null && SrLocation.Of(config, sr.Uuid) is { } location && shares.Handles(location))
            {
                try
                {
                    await shares.MountAsync(location, config, cancellationToken);
                }
                catch (XenApiException ex)
                {
                    logger.LogWarning(NotReachable, "The share of SR {Sr} does not mount here: {Reason}", sr.Get(XenApi.SR.NameLabel), ex.Message);
                }
            }
        }
    }

    /// <summary>Why the SR cannot be used from this host now; null when it can.</summary>
    private async Task<string?> UnusableAsync(XenObject sr, IReadOnlyDictionary<string, string> deviceConfig, CancellationToken cancellationToken)
    {
        var location = SrLocation.Of(deviceConfig, sr.Uuid);
        if (location is null)
        {
            return "its device_config names no location";
        }

        var type = sr.Get(XenApi.SR.Type);
        // A directory every host sees (a file SR, a local ISO library); anything else (an NFS or iSCSI SR's URL, an ISO
        // library on a share) is asked of its driver.
        if (Path.IsPathFullyQualified(location) && !shares.Handles(location))
        {
            return Directory.Exists(location) ? null : $"the directory {location} is missing here";
        }

        try
        {
            await shares.MountIfShareAsync(location, deviceConfig, cancellationToken);
            await drivers.Get(type).ProbeAsync(location, create: false, cancellationToken);
            return null;
        }
        catch (XenApiException ex)
        {
            return $"{ex.Code} {string.Join(' ', ex.ErrorDescription.Skip(1))}";
        }
    }
}
