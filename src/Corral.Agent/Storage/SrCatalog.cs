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
        var driver = drivers.Get(sr.GetString("type"));
        var volumes = await driver.ScanAsync(directory, cancellationToken).ConfigureAwait(false);
        var remembered = driver.KeepsMetadata ? await ReadMetadataAsync(directory, cancellationToken).ConfigureAwait(false) : null;
        var known = new Dictionary<string, XenObject>(StringComparer.Ordinal);
        foreach (var vdiRef in sr.GetSet("VDIs"))
        {
            var vdi = await database.GetAsync(XenClasses.VDI, vdiRef, cancellationToken).ConfigureAwait(false);
            known[vdi.GetString("location")] = vdi;
        }

        // A storage migration's copy in progress is not a VDI yet: the migration's commit makes it one (or it is deleted).
        var inFlight = (await database.Leases.GetPrefixAsync(MigrationRecord.Prefix, cancellationToken).ConfigureAwait(false)).Values
            .SelectMany(json => MigrationRecord.FromJson(json).Disks)
            .Where(d => d.DestinationSrRef == sr.Ref)
            .Select(d => d.DestinationVdiUuid)
            .ToHashSet(StringComparer.Ordinal);
        var tx = new PoolTransaction();
        foreach (var volume in volumes.Where(v => !inFlight.Contains(Path.GetFileNameWithoutExtension(v.Location))))
        {
            if (known.Remove(volume.Location, out var existing))
            {
                if (existing.GetInt("virtual_size") != volume.VirtualSize || existing.GetBool("missing") || !existing.GetBool("managed"))
                {
                    var v = existing.Clone();
                    v["virtual_size"] = volume.VirtualSize;
                    v["physical_utilisation"] = volume.PhysicalUtilisation;
                    v["missing"] = false;
                    v["managed"] = true;
                    tx.Update(v);
                }

                continue;
            }

            tx.Create(XenClasses.VDISchema, NewVdi(sr, driver, volume, remembered?.Find(volume.Location)));
        }

        // HA's statefile is a directory of heartbeats, not a volume a scan would list.
        foreach (var vanished in known.Values.Where(v => !v.GetBool("missing") && v.GetString("type") != "ha_statefile"))
        {
            var v = vanished.Clone();
            v["missing"] = true;
            tx.Update(v);
        }

        if (!tx.IsEmpty)
        {
            await database.CommitAsync(tx, cancellationToken).ConfigureAwait(false);
        }

        await UpdateUsageAsync(sr, directory, cancellationToken).ConfigureAwait(false);
        await WriteMetadataAsync(sr.Ref, directory, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>A VDI record for a volume found by a scan: as the SR's metadata remembers it, else named after its file.</summary>
    private static Dictionary<string, object?> NewVdi(XenObject sr, ISrDriver driver, VolumeInfo volume, SrMetadataVdi? remembered)
    {
        var iso = driver.Type == IsoSrDriver.TypeName;
        var uuid = Path.GetFileNameWithoutExtension(volume.Location);
        var fields = new Dictionary<string, object?>
        {
            ["uuid"] = !iso && OpaqueRef.IsUuid(uuid) ? uuid : OpaqueRef.NewUuid(),
            ["name_label"] = iso ? volume.Location : uuid,
            ["SR"] = sr.Ref,
            ["location"] = volume.Location,
            ["virtual_size"] = volume.VirtualSize,
            ["physical_utilisation"] = volume.PhysicalUtilisation,
            ["type"] = "user",
            ["read_only"] = iso,
            ["sharable"] = iso,
            ["managed"] = true,
        };
        if (remembered is not null && OpaqueRef.IsUuid(remembered.Uuid))
        {
            fields["uuid"] = remembered.Uuid;
            fields["name_label"] = remembered.NameLabel;
            fields["name_description"] = remembered.NameDescription;
            fields["type"] = XenEnumTypes.VdiType.Values.Contains(remembered.Type) ? remembered.Type : "user";
            fields["sharable"] = remembered.Sharable;
            fields["read_only"] = remembered.ReadOnly;
            fields["other_config"] = remembered.OtherConfig.ToDictionary(kv => kv.Key, kv => (object?)kv.Value);
        }

        return fields;
    }

    public async Task UpdateUsageAsync(XenObject sr, string directory, CancellationToken cancellationToken)
    {
        var usage = await drivers.Get(sr.GetString("type")).GetUsageAsync(directory, cancellationToken).ConfigureAwait(false);
        var vdis = await database.GetAllAsync(XenClasses.VDI, cancellationToken).ConfigureAwait(false);
        var allocation = vdis.Where(v => v.GetString("SR") == sr.Ref).Sum(v => v.GetInt("virtual_size"));
        await database.UpdateAsync([(XenClasses.SR, sr.Ref)], (objs, tx) =>
        {
            var s = objs[0].Clone();
            s["physical_size"] = usage.PhysicalSize;
            s["physical_utilisation"] = usage.PhysicalUtilisation;
            s["virtual_allocation"] = allocation;
            tx.Update(s);
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Writes the SR's metadata (the SR and its VDIs as the pool database has them now) into its directory, for drivers
    /// that keep it. A failure is logged, not raised: the pool database has it all, and the next change writes again.
    /// </summary>
    public async Task WriteMetadataAsync(string srRef, string directory, CancellationToken cancellationToken)
    {
        var sr = await database.GetAsync(XenClasses.SR, srRef, cancellationToken).ConfigureAwait(false);
        if (!drivers.Get(sr.GetString("type")).KeepsMetadata)
        {
            return;
        }

        var vdis = new List<SrMetadataVdi>();
        foreach (var vdiRef in sr.GetSet("VDIs"))
        {
            if (await database.TryGetAsync(XenClasses.VDI, vdiRef, cancellationToken).ConfigureAwait(false) is { } vdi && vdi.GetString("location").Length > 0)
            {
                vdis.Add(new SrMetadataVdi(vdi.GetString("location"), vdi.Uuid, vdi.GetString("name_label"), vdi.GetString("name_description"),
                    vdi.GetString("type"), vdi.GetBool("sharable"), vdi.GetBool("read_only"), vdi.GetStringMap("other_config")));
            }
        }

        var metadata = new SrMetadata(
            new SrMetadataSr(sr.Uuid, sr.GetString("name_label"), sr.GetString("name_description"), sr.GetString("type"), sr.GetString("content_type"),
                sr.GetBool("shared")),
            vdis.OrderBy(v => v.Location, StringComparer.Ordinal).ToList());
        try
        {
            await SrMetadataFile.WriteAsync(directory, metadata, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            logger.LogWarning(ex, "Could not write the metadata of SR {Sr} into {Directory}", sr.GetString("name_label"), directory);
        }
    }

    /// <summary>
    /// The SR metadata in a directory that is to become <paramref name="sr"/>'s: none, or this SR's. Another SR's is
    /// refused (SR.create: the SR exists already; a plug: the directory is not this SR), so two records never share one
    /// directory's volumes.
    /// </summary>
    public async Task RequireOwnMetadataAsync(XenObject sr, string directory, bool creating, CancellationToken cancellationToken)
    {
        if (!drivers.Get(sr.GetString("type")).KeepsMetadata
            || await ReadMetadataAsync(directory, cancellationToken).ConfigureAwait(false) is not { } metadata
            || metadata.Sr.Uuid == sr.Uuid)
        {
            return;
        }

        var detail = $"{directory} holds SR {metadata.Sr.Uuid} ({metadata.Sr.NameLabel}), not {sr.Uuid}";
        throw creating ? SrBackend.AlreadyExists(detail) : SrBackend.Unavailable(detail);
    }

    private async Task<SrMetadata?> ReadMetadataAsync(string directory, CancellationToken cancellationToken)
    {
        try
        {
            return await SrMetadataFile.ReadAsync(directory, cancellationToken).ConfigureAwait(false);
        }
        catch (InvalidDataException ex)
        {
            logger.LogWarning(ex, "Ignoring the unreadable SR metadata in {Directory}", directory);
            return null;
        }
    }
}
