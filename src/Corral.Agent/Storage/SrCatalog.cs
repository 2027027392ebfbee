using Corral.Api.Migration;
using Corral.Model;
using Corral.PoolDatabase;
using Corral.Storage;

namespace Corral.Agent.Storage;

/// <summary>
/// An SR's VDI records and its storage kept in step on this host: a scan turns volumes into VDIs (under the uuids and
/// names the SR's metadata remembers, for an SR introduced again) and marks vanished ones missing; the metadata is
/// written back from the pool database after every change, so the storage always knows its VDIs.
/// </summary>
public sealed class SrCatalog(IPoolDatabase database, SrDrivers drivers, ILogger<SrCatalog> logger)
{
    /// <summary>Makes the SR's VDIs match its directory, then records usage and metadata.</summary>
    public async Task ScanAsync(XenObject sr, string directory, CancellationToken cancellationToken)
    {
        var driver = drivers.Get(sr.Get(XenApi.SR.Type));
        var volumes = await driver.ScanAsync(directory, cancellationToken);
        var remembered = driver.KeepsMetadata ? await ReadMetadataAsync(driver, directory, cancellationToken) : null;
        var known = new Dictionary<string, XenObject>(StringComparer.Ordinal);
        foreach (var vdiRef in sr.Get(XenApi.SR.VDIs))
        {
            var vdi = await database.GetAsync(XenClasses.VDI, vdiRef, cancellationToken);
            known[vdi.Get(XenApi.VDI.Location)] = vdi;
        }

        // A storage migration's copy in progress is not a VDI yet: the migration's commit makes it one (or it is deleted).
        var inFlight = (await database.Leases.GetPrefixAsync(MigrationRecord.Prefix, cancellationToken)).Values
            .SelectMany(json => MigrationRecord.FromJson(json).Disks)
            .Where(d => d.DestinationSrRef == sr.Ref)
            .Select(d => d.DestinationVdiUuid)
            .ToHashSet(StringComparer.Ordinal);
        var tx = new PoolTransaction();
        foreach (var volume in volumes.Where(v => !inFlight.Contains(Path.GetFileNameWithoutExtension(v.Location))))
        {
            if (known.Remove(volume.Location, out var existing))
            {
                if (existing.Get(XenApi.VDI.VirtualSize) != volume.VirtualSize || existing.Get(XenApi.VDI.Missing) || !existing.Get(XenApi.VDI.Managed))
                {
                    var v = existing.Clone();
                    v.Set(XenApi.VDI.VirtualSize, volume.VirtualSize);
                    v.Set(XenApi.VDI.PhysicalUtilisation, volume.PhysicalUtilisation);
                    v.Set(XenApi.VDI.Missing, false);
                    v.Set(XenApi.VDI.Managed, true);
                    tx.Update(v);
                }

                continue;
            }

            NewVdi(tx, sr, driver, volume, remembered?.Find(volume.Location));
        }

        // HA's statefile is a directory of heartbeats, not a volume a scan would list.
        foreach (var vanished in known.Values.Where(v => !v.Get(XenApi.VDI.Missing) && v.Get(XenApi.VDI.Type) != VdiType.HaStatefile))
        {
            var v = vanished.Clone();
            v.Set(XenApi.VDI.Missing, true);
            tx.Update(v);
        }

        if (!tx.IsEmpty)
        {
            await database.CommitAsync(tx, cancellationToken);
        }

        await UpdateUsageAsync(sr, directory, cancellationToken);
        await WriteMetadataAsync(sr.Ref, directory, cancellationToken);
    }

    /// <summary>Adds a VDI record for a volume found by a scan: as the SR's metadata remembers it, else named after its file.</summary>
    private static void NewVdi(PoolTransaction tx, XenObject sr, ISrDriver driver, VolumeInfo volume, SrMetadataVdi? remembered)
    {
        var iso = driver.Type == IsoSrDriver.TypeName;
        var uuid = Path.GetFileNameWithoutExtension(volume.Location);
        var vdi = tx.Create(XenClasses.VDISchema);
        vdi.Set(XenApi.VDI.SR, sr.Ref);
        vdi.Set(XenApi.VDI.Location, volume.Location);
        vdi.Set(XenApi.VDI.VirtualSize, volume.VirtualSize);
        vdi.Set(XenApi.VDI.PhysicalUtilisation, volume.PhysicalUtilisation);
        vdi.Set(XenApi.VDI.Managed, true);
        if (remembered is not null && OpaqueRef.IsUuid(remembered.Uuid))
        {
            vdi.Set(XenApi.VDI.Uuid, remembered.Uuid);
            vdi.Set(XenApi.VDI.NameLabel, remembered.NameLabel);
            vdi.Set(XenApi.VDI.NameDescription, remembered.NameDescription);
            vdi.Set(XenApi.VDI.Type, XenEnumTypes.VdiType.Values.Contains(remembered.Type) ? XenApi.VDI.Type.Read(remembered.Type) : VdiType.User);
            vdi.Set(XenApi.VDI.Sharable, remembered.Sharable);
            vdi.Set(XenApi.VDI.ReadOnly, remembered.ReadOnly);
            vdi.Set(XenApi.VDI.OtherConfig, remembered.OtherConfig);
        }
        else
        {
            vdi.Set(XenApi.VDI.Uuid, !iso && OpaqueRef.IsUuid(uuid) ? uuid : OpaqueRef.NewUuid());
            vdi.Set(XenApi.VDI.NameLabel, iso ? volume.Location : uuid);
            vdi.Set(XenApi.VDI.Type, VdiType.User);
            vdi.Set(XenApi.VDI.ReadOnly, iso);
            vdi.Set(XenApi.VDI.Sharable, iso);
        }
    }

    public async Task UpdateUsageAsync(XenObject sr, string directory, CancellationToken cancellationToken)
    {
        var usage = await drivers.Get(sr.Get(XenApi.SR.Type)).GetUsageAsync(directory, cancellationToken);
        var vdis = await database.GetAllAsync(XenClasses.VDI, cancellationToken);
        var allocation = vdis.Where(v => v.Get(XenApi.VDI.SR) == sr.Ref).Sum(v => v.Get(XenApi.VDI.VirtualSize));
        await database.UpdateAsync([(XenClasses.SR, sr.Ref)], (objs, tx) =>
        {
            var s = objs[0].Clone();
            s.Set(XenApi.SR.PhysicalSize, usage.PhysicalSize);
            s.Set(XenApi.SR.PhysicalUtilisation, usage.PhysicalUtilisation);
            s.Set(XenApi.SR.VirtualAllocation, allocation);
            tx.Update(s);
        }, cancellationToken);
    }

    /// <summary>
    /// Writes the SR's metadata (the SR and its VDIs as the pool database has them now) into its directory, for drivers
    /// that keep it. A failure is logged, not raised: the pool database has it all, and the next change writes again.
    /// </summary>
    public async Task WriteMetadataAsync(string srRef, string directory, CancellationToken cancellationToken)
    {
        var sr = await database.GetAsync(XenClasses.SR, srRef, cancellationToken);
        var driver = drivers.Get(sr.Get(XenApi.SR.Type));
        if (!driver.KeepsMetadata)
        {
            return;
        }

        var vdis = new List<SrMetadataVdi>();
        foreach (var vdiRef in sr.Get(XenApi.SR.VDIs))
        {
            if (await database.TryGetAsync(XenClasses.VDI, vdiRef, cancellationToken) is { } vdi && vdi.Get(XenApi.VDI.Location).Length > 0)
            {
                vdis.Add(new SrMetadataVdi(vdi.Get(XenApi.VDI.Location), vdi.Uuid, vdi.Get(XenApi.VDI.NameLabel), vdi.Get(XenApi.VDI.NameDescription),
                    vdi.GetString("type"), vdi.Get(XenApi.VDI.Sharable), vdi.Get(XenApi.VDI.ReadOnly), vdi.Get(XenApi.VDI.OtherConfig)));
            }
        }

        var metadata = new SrMetadata(
            new SrMetadataSr(sr.Uuid, sr.Get(XenApi.SR.NameLabel), sr.Get(XenApi.SR.NameDescription), sr.Get(XenApi.SR.Type), sr.Get(XenApi.SR.ContentType),
                sr.Get(XenApi.SR.Shared)),
            vdis.OrderBy(v => v.Location, StringComparer.Ordinal).ToList());
        try
        {
            await driver.WriteMetadataAsync(directory, metadata, cancellationToken);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            logger.LogWarning(ex, "Could not write the metadata of SR {Sr} into {Directory}", sr.Get(XenApi.SR.NameLabel), directory);
        }
    }

    /// <summary>
    /// The SR metadata in a directory that is to become <paramref name="sr"/>'s: none, or this SR's. Another SR's is
    /// refused (SR.create: the SR exists already; a plug: the directory is not this SR), so two records never share one
    /// directory's volumes.
    /// </summary>
    public async Task RequireOwnMetadataAsync(XenObject sr, string directory, bool creating, CancellationToken cancellationToken)
    {
        var driver = drivers.Get(sr.Get(XenApi.SR.Type));
        if (!driver.KeepsMetadata
            || await ReadMetadataAsync(driver, directory, cancellationToken) is not { } metadata
            || metadata.Sr.Uuid == sr.Uuid)
        {
            return;
        }

        var detail = $"{directory} holds SR {metadata.Sr.Uuid} ({metadata.Sr.NameLabel}), not {sr.Uuid}";
        throw creating ? SrBackend.AlreadyExists(detail) : SrBackend.Unavailable(detail);
    }

    private async Task<SrMetadata?> ReadMetadataAsync(ISrDriver driver, string directory, CancellationToken cancellationToken)
    {
        try
        {
            return await driver.ReadMetadataAsync(directory, cancellationToken);
        }
        catch (InvalidDataException ex)
        {
            logger.LogWarning(ex, "Ignoring the unreadable SR metadata in {Directory}", directory);
            return null;
        }
    }
}
