using System.Globalization;
using Corral.Model;
using Corral.Platform;
using Corral.PoolDatabase;

namespace Corral.Storage.Iscsi;

/// <summary>
/// XenServer's iSCSI SR (<c>type=lvmoiscsi</c>: device-config target, port, targetIQN, SCSIid, chapuser, chappassword)
/// reached in userspace (this machine's kernel has no initiator): one LUN holds the SR, its metadata in the first
/// 4 MiB (<see cref="IscsiLunLayout"/>), each VDI a raw extent after it, allocated in the pool database
/// (<see cref="IscsiExtents"/>); QEMU opens a VDI with its iscsi driver under a raw node bounded to the extent. Clones,
/// copies and snapshots are full copies into new extents (thick, as raw LVs are). See docs/storage.md.
/// </summary>
public sealed partial class IscsiSrDriver(Func<IPoolDatabase> database) : ISrDriver, ISharedVolumes
{
    public const string TypeName = "lvmoiscsi";

    private readonly IscsiExtents _extents = new(database);

    public string Type => TypeName;

    public string DefaultContentType => "user";

    public bool SupportsVdiCreate => true;

    public bool KeepsMetadata => true;

    /// <summary>Create, delete, offline resize, and clones and snapshots as full copies (no online resize: a raw extent under a running guest cannot move).</summary>
    public IReadOnlySet<string> Features { get; } = new HashSet<string>(StringComparer.Ordinal) { "VDI_CREATE", "VDI_DELETE", "VDI_RESIZE", "VDI_CLONE", "VDI_SNAPSHOT" };

    /// <summary>SM's checks: a target (ConfigTargetMissing, 95), a targetIQN (96), a SCSIid (ConfigSCSIid, 107), a port number.</summary>
    public void CheckDeviceConfig(IReadOnlyDictionary<string, string> deviceConfig)
    {
        ArgumentNullException.ThrowIfNull(deviceConfig);
        RequirePortal(deviceConfig);
        if (string.IsNullOrWhiteSpace(deviceConfig.GetValueOrDefault("targetIQN")))
        {
            throw IqnMissing("");
        }

        if (string.IsNullOrWhiteSpace(deviceConfig.GetValueOrDefault("SCSIid")))
        {
            throw ScsiIdMissing("");
        }
    }

    /// <summary>Logs in and finds the LUN (which fills the SCSIid → LUN number cache QEMU's paths are made from); its metadata is read to prove it readable.</summary>
    public async Task ProbeAsync(string directory, bool create, CancellationToken cancellationToken)
    {
        var target = Parse(directory);
        var lun = await IscsiTarget.FindAsync(target, cancellationToken);
        if (lun.Size < IscsiLunLayout.MetadataArea + IscsiLunLayout.Alignment)
        {
            throw SrBackend.Failure(44, "There is insufficient space", $"LUN {lun.ScsiId} has {lun.Size} bytes");
        }

        await IscsiLunLayout.ReadAsync(target, lun.Number, cancellationToken);
    }

    /// <summary>
    /// SR.probe as SM's lvmoiscsi answers it: with a target only, error 96 carrying the target's IQNs; with a targetIQN
    /// too, error 107 carrying its LUNs; with a SCSIid, the SR the LUN holds (none when its metadata area is empty).
    /// </summary>
    public async Task<IReadOnlyList<ProbedSr>> ProbeSrsAsync(IReadOnlyDictionary<string, string> deviceConfig, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(deviceConfig);
        var portal = RequirePortal(deviceConfig);
        if (string.IsNullOrWhiteSpace(deviceConfig.GetValueOrDefault("targetIQN")))
        {
            throw IqnMissing(IscsiTarget.TargetsXml(portal, await IscsiTarget.TargetsAsync(portal, cancellationToken)));
        }

        var target = portal with { TargetIqn = deviceConfig["targetIQN"] };
        if (string.IsNullOrWhiteSpace(deviceConfig.GetValueOrDefault("SCSIid")))
        {
            throw ScsiIdMissing(IscsiTarget.LunsXml(await IscsiTarget.LunsAsync(target, cancellationToken)));
        }

        var lun = await IscsiTarget.FindAsync(target with { ScsiId = deviceConfig["SCSIid"] }, cancellationToken);
        var metadata = await ReadLunMetadataAsync(target, lun.Number, cancellationToken);
        if (metadata is null)
        {
            return [];
        }

        var used = metadata.Vdis.Sum(v => IscsiLunLayout.ParseLocation(v.Location)?.Size ?? 0);
        var total = lun.Size - IscsiLunLayout.MetadataArea;
        return [new ProbedSr(metadata.Sr.Uuid, metadata.Sr.NameLabel, metadata.Sr.NameDescription, total, total - used)];
    }

    /// <summary>SR.destroy: refused (SR_NOT_EMPTY) while the LUN's metadata lists VDIs; the metadata area is zeroed.</summary>
    public async Task DeleteAsync(string directory, CancellationToken cancellationToken)
    {
        var target = Parse(directory);
        var lun = IscsiTarget.LunNumber(target);
        var metadata = await IscsiLunLayout.ReadAsync(target, lun, cancellationToken);
        if (metadata is { Metadata.Vdis.Count: > 0 } || (await _extents.ReadAsync(target.SrUuid, cancellationToken)).Keys.Any(IscsiExtents.IsVdi))
        {
            throw new XenApiException(ErrorCodes.SrNotEmpty);
        }

        await IscsiLunLayout.WipeAsync(target, lun, cancellationToken);
    }

    public async Task<SrUsage> GetUsageAsync(string directory, CancellationToken cancellationToken)
    {
        var target = Parse(directory);
        var lun = await IscsiTarget.FindAsync(target, cancellationToken);
        var used = (await _extents.ReadAsync(target.SrUuid, cancellationToken)).Values.Sum(e => e.Size);
        return new SrUsage(lun.Size - IscsiLunLayout.MetadataArea, used);
    }

    /// <summary>The VDIs the LUN's metadata lists, whose extents the map gains if it lacks them (an introduced SR).</summary>
    public async Task<IReadOnlyList<VolumeInfo>> ScanAsync(string directory, CancellationToken cancellationToken)
    {
        var target = Parse(directory);
        var metadata = await ReadLunMetadataAsync(target, IscsiTarget.LunNumber(target), cancellationToken);
        var extents = (metadata?.Vdis ?? []).Select(v => IscsiLunLayout.ParseLocation(v.Location)).OfType<(string Uuid, long Offset, long Size)>().ToList();
        await _extents.AdoptAsync(target.SrUuid, extents, cancellationToken);
        var map = await _extents.ReadAsync(target.SrUuid, cancellationToken);
        return map.Where(kv => IscsiExtents.IsVdi(kv.Key)).Select(kv => Volume(kv.Key, kv.Value.Offset, kv.Value.Size))
            .OrderBy(v => v.Location, StringComparer.Ordinal).ToList();
    }

    public Task<(string Blockdev, string? Password)> VolumeAsync(string location, string srUuid, SharedVolume volume, string node, CancellationToken cancellationToken) =>
        IscsiSharedVolume.EnsureAsync(_extents, Parse(location), volume, node, cancellationToken);

    public async Task<VolumeInfo> CreateAsync(string directory, string vdiUuid, long virtualSize, CancellationToken cancellationToken)
    {
        var target = Parse(directory);
        var lun = await IscsiTarget.FindAsync(target, cancellationToken);
        var (offset, size) = await _extents.AllocateAsync(target.SrUuid, vdiUuid, virtualSize, lun.Size, cancellationToken);
        return Volume(vdiUuid, offset, size);
    }

    /// <summary>
    /// A full copy of a volume that qemu-img reads by its path (a file or NFS SR's image, in any format, or an extent of
    /// this or another LUN) into a new extent, raw: how vm-install puts a template's disk here, and VDI.clone and
    /// VDI.copy. The extent is the one already allocated to the new uuid when a copy resumes; a copy that fails frees it.
    /// </summary>
    public async Task<VolumeInfo> CopyAsync(string sourcePath, string targetDirectory, string newVdiUuid, CancellationToken cancellationToken)
    {
        var (offset, size) = await CopyIntoNewExtentAsync(sourcePath, Parse(targetDirectory), newVdiUuid, cancellationToken);
        return Volume(newVdiUuid, offset, size);
    }

    /// <summary>
    /// A full copy of what qemu-img reads at <paramref name="sourcePath"/> into an extent of its size under
    /// <paramref name="key"/> (the one already there when a copy resumes); a copy that fails frees it.
    /// </summary>
    private async Task<(long Offset, long Size)> CopyIntoNewExtentAsync(string sourcePath, IscsiLocation target, string key, CancellationToken cancellationToken)
    {
        var virtualSize = await VirtualSizeAsync(sourcePath, cancellationToken);
        var lun = await IscsiTarget.FindAsync(target, cancellationToken);
        var (offset, size) = await _extents.AllocateAsync(target.SrUuid, key, virtualSize, lun.Size, cancellationToken);
        try
        {
            await IscsiLunIo.CopyIntoAsync(sourcePath, target, lun.Number, offset, size, cancellationToken);
        }
        catch (Exception) when (!cancellationToken.IsCancellationRequested)
        {
            await _extents.FreeAsync(target.SrUuid, key, CancellationToken.None);
            throw;
        }

        return (offset, size);
    }

    /// <summary>An extent's size, or the virtual size qemu-img reads from an image.</summary>
    private static async Task<long> VirtualSizeAsync(string path, CancellationToken cancellationToken)
    {
        if (IscsiExtentPath.TryParse(path) is { } extent)
        {
            return extent.Size;
        }

        var json = await CommandRunner.RunCheckedAsync("qemu-img", ["info", "--output=json", "-U", path], cancellationToken);
        using var document = System.Text.Json.JsonDocument.Parse(json);
        return document.RootElement.GetProperty("virtual-size").GetInt64();
    }

    /// <summary>
    /// Grows the extent in place when the bytes after it are free; else moves the VDI to a free extent of the new size
    /// (its bytes copied, then the map switched in one step, freeing the old extent; SR_BACKEND_FAILURE_44 when there is
    /// none). Shrinking is VDI_TOO_SMALL. The location changes with the size and the offset. Only for a VDI no VM has open
    /// (VDI.resize refuses one in a running VM). A resize resumed after a crash finds its partial extent and copies again.
    /// </summary>
    public async Task<VolumeInfo> ResizeAsync(string directory, string location, long newVirtualSize, CancellationToken cancellationToken)
    {
        var target = Parse(directory);
        var (uuid, _, size) = Extent(location);
        if (newVirtualSize < size)
        {
            throw new XenApiException(ErrorCodes.VdiTooSmall, location, size.ToString(CultureInfo.InvariantCulture));
        }

        var lun = await IscsiTarget.FindAsync(target, cancellationToken);
        if (await _extents.TryGrowAsync(target.SrUuid, uuid, newVirtualSize, lun.Size, cancellationToken) is { } grown)
        {
            return Volume(uuid, grown.Offset, grown.Size);
        }

        var current = await _extents.FindAsync(target.SrUuid, uuid, cancellationToken) ?? throw SrBackend.Failure(46, "The VDI is not available", $"{uuid} has no extent");
        var (offset, length) = await _extents.AllocateAsync(target.SrUuid, IscsiExtents.PartialKey(uuid), newVirtualSize, lun.Size, cancellationToken);
        await IscsiLunIo.CopyIntoAsync(target.ExtentPath(lun.Number, current.Offset, current.Size), target, lun.Number, offset, length, cancellationToken);
        var moved = await _extents.ReplaceAsync(target.SrUuid, uuid, cancellationToken);
        return Volume(uuid, moved.Offset, moved.Size);
    }

    /// <summary>Frees the extent in the map; its bytes are left as they are (a later VDI there is not zeroed: docs/storage.md).</summary>
    public Task DestroyAsync(string directory, string location, CancellationToken cancellationToken) =>
        _extents.FreeAsync(Parse(directory).SrUuid, Extent(location).Uuid, cancellationToken);

    /// <summary>The LUN's URL with the extent (<see cref="IscsiLocation.ExtentPath"/>), opened raw.</summary>
    public (string Path, string Format) Resolve(string directory, string location)
    {
        var target = Parse(directory);
        var (_, offset, size) = Extent(location);
        return (target.ExtentPath(IscsiTarget.LunNumber(target), offset, size), "raw");
    }

    public async Task<SrMetadata?> ReadMetadataAsync(string directory, CancellationToken cancellationToken)
    {
        var target = Parse(directory);
        return (await IscsiLunLayout.ReadAsync(target, IscsiTarget.LunNumber(target), cancellationToken))?.Metadata;
    }

    public Task WriteMetadataAsync(string directory, SrMetadata metadata, CancellationToken cancellationToken)
    {
        var target = Parse(directory);
        return IscsiLunLayout.WriteAsync(target, IscsiTarget.LunNumber(target), metadata, cancellationToken);
    }

    private static async Task<SrMetadata?> ReadLunMetadataAsync(IscsiLocation target, int lun, CancellationToken cancellationToken)
    {
        try
        {
            return (await IscsiLunLayout.ReadAsync(target, lun, cancellationToken))?.Metadata;
        }
        catch (InvalidDataException)
        {
            return null;
        }
    }

    private static VolumeInfo Volume(string uuid, long offset, long size) => new(IscsiLunLayout.Location(uuid, offset, size), size, size, "raw");

    private static (string Uuid, long Offset, long Size) Extent(string location) =>
        IscsiLunLayout.ParseLocation(location) ?? throw new XenApiException(ErrorCodes.InvalidValue, "location", location);

    private static IscsiLocation RequirePortal(IReadOnlyDictionary<string, string> deviceConfig)
    {
        if (deviceConfig.GetValueOrDefault("target") is not { Length: > 0 } address || address.Contains('/', StringComparison.Ordinal))
        {
            throw SrBackend.Failure(95, "The request is missing the target parameter");
        }

        var port = IscsiLocation.ParsePort(deviceConfig.GetValueOrDefault("port"))
                   ?? throw SrBackend.Failure(1, "Invalid argument", $"port {deviceConfig.GetValueOrDefault("port")}");
        var user = deviceConfig.GetValueOrDefault("chapuser");
        var password = string.IsNullOrEmpty(user) ? null : deviceConfig.GetValueOrDefault("chappassword") ?? "";
        if (!IscsiLocation.UrlSafe(user, password))
        {
            throw SrBackend.Failure(1, "Invalid argument", "libiscsi cannot pass a CHAP user holding '%', '@' or '/', or a password holding '@' or '/'");
        }

        return new IscsiLocation(address, port, "", "", "", string.IsNullOrEmpty(user) ? null : user, password, IscsiLocation.InitiatorOf(deviceConfig));
    }

    /// <summary>SM's ConfigTargetIQNMissing (96); a probe puts the target's IQNs in the error's last parameter.</summary>
    private static XenApiException IqnMissing(string iqnsXml) =>
        new($"{ErrorCodes.SrBackendFailure}_96", "", "The request is missing or has an incorrect target IQN parameter", iqnsXml);

    /// <summary>SM's ConfigSCSIid (107); a probe puts the target's LUNs in the error's last parameter.</summary>
    private static XenApiException ScsiIdMissing(string lunsXml) =>
        new($"{ErrorCodes.SrBackendFailure}_107", "", "The SCSIid parameter is missing or incorrect", lunsXml);

    private static IscsiLocation Parse(string directory)
    {
        try
        {
            return IscsiLocation.Parse(directory);
        }
        catch (FormatException ex)
        {
            throw SrBackend.Unavailable(ex.Message);
        }
    }
}
