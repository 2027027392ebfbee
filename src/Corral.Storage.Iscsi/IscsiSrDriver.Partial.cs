namespace Corral.Storage.Iscsi;

/// <summary>
/// Snapshots' volumes: a partial extent (<see cref="IscsiExtents.PartialKey"/>, which a scan never adopts) that QEMU's
/// backup job or qemu-img fills, then made the VDI's in one step of the map.
/// </summary>
public sealed partial class IscsiSrDriver
{
    /// <summary>An extent of <paramref name="virtualSize"/> for QEMU to copy a running disk into, opened raw (a backup job's target is exactly its source's size, as the VDI's extent is).</summary>
    public async Task<(string Path, string Format)> CreatePartialAsync(string directory, string vdiUuid, long virtualSize, CancellationToken cancellationToken)
    {
        var target = Parse(directory);
        var lun = await IscsiTarget.FindAsync(target, cancellationToken);
        var (offset, size) = await _extents.AllocateAsync(target.SrUuid, IscsiExtents.PartialKey(vdiUuid), virtualSize, lun.Size, cancellationToken);
        return (target.ExtentPath(lun.Number, offset, size), "raw");
    }

    /// <summary>A full copy of a halted disk (an extent, or any image qemu-img reads) into a partial extent of its size.</summary>
    public Task CopyToPartialAsync(string sourcePath, string directory, string vdiUuid, CancellationToken cancellationToken) =>
        CopyIntoNewExtentAsync(sourcePath, Parse(directory), IscsiExtents.PartialKey(vdiUuid), cancellationToken);

    public async Task<VolumeInfo> PartialInfoAsync(string directory, string vdiUuid, CancellationToken cancellationToken)
    {
        var target = Parse(directory);
        var (offset, size) = await _extents.FindAsync(target.SrUuid, IscsiExtents.PartialKey(vdiUuid), cancellationToken)
                             ?? throw SrBackend.Failure(46, "The VDI is not available", $"{vdiUuid} has no partial extent");
        return Volume(vdiUuid, offset, size);
    }

    /// <summary>The partial extent becomes the VDI's; repeated, it finds it done.</summary>
    public async Task<VolumeInfo> CompletePartialAsync(string directory, string vdiUuid, CancellationToken cancellationToken)
    {
        var (offset, size) = await _extents.ReplaceAsync(Parse(directory).SrUuid, vdiUuid, cancellationToken);
        return Volume(vdiUuid, offset, size);
    }

    /// <summary>Frees what an abandoned copy into <paramref name="vdiUuid"/> holds, partial or complete.</summary>
    public async Task DiscardAsync(string directory, string vdiUuid, CancellationToken cancellationToken)
    {
        var srUuid = Parse(directory).SrUuid;
        await _extents.FreeAsync(srUuid, IscsiExtents.PartialKey(vdiUuid), cancellationToken);
        await _extents.FreeAsync(srUuid, vdiUuid, cancellationToken);
    }
}
