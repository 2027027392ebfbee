using Corral.Model;

namespace Corral.Storage;

/// <summary>A volume as the driver sees it on disk.</summary>
/// <param name="Location">The VDI's <c>location</c>: a file name inside the SR's directory.</param>
public sealed record VolumeInfo(string Location, long VirtualSize, long PhysicalUtilisation, string Format);

/// <summary>Space on the SR's filesystem.</summary>
public sealed record SrUsage(long PhysicalSize, long PhysicalUtilisation);

/// <summary>
/// One SR type (<c>SR.type</c>). Drivers hold no state: everything they need is the SR's location (the string
/// <see cref="SrLocation.Of"/> makes of a PBD's device_config: a directory for file and ISO SRs, an nfs:// URL for NFS
/// ones), which the methods below name <c>directory</c>.
/// </summary>
public interface ISrDriver
{
    /// <summary>The SR type name as XenAPI clients pass it to SR.create (<c>file</c>, <c>iso</c>).</summary>
    string Type { get; }

    /// <summary>The content type SRs of this type get when the creator gives none.</summary>
    string DefaultContentType { get; }

    /// <summary>Whether VDIs can be created here (an ISO library is read-only to Corral).</summary>
    bool SupportsVdiCreate { get; }

    /// <summary>
    /// What the driver can do to volumes, as xapi's SM records name it (<c>VDI_CREATE</c>, <c>VDI_DELETE</c>,
    /// <c>VDI_RESIZE</c>, <c>VDI_CLONE</c>...): the SR's and its VDIs' allowed operations are read from it.
    /// </summary>
    IReadOnlySet<string> Features { get; }

    /// <summary>
    /// SR.create's check of the device_config it was given, before any record is made: file and ISO SRs need a
    /// <c>location</c>.
    /// </summary>
    void CheckDeviceConfig(IReadOnlyDictionary<string, string> deviceConfig)
    {
        if (!deviceConfig.TryGetValue("location", out var location) || string.IsNullOrWhiteSpace(location))
        {
            throw new XenApiException(ErrorCodes.SrBackendFailure, "SR_BACKEND_FAILURE_LOCATION", "", "device-config:location is required (the SR's directory)");
        }
    }

    /// <summary>The SR's metadata (<see cref="SrMetadataFile"/>) kept at its location, or null when there is none.</summary>
    /// <exception cref="InvalidDataException">It is there but unreadable.</exception>
    Task<SrMetadata?> ReadMetadataAsync(string directory, CancellationToken cancellationToken) => SrMetadataFile.ReadAsync(directory, cancellationToken);

    /// <summary>Replaces the SR's metadata at its location, so that a crash leaves the old or the new.</summary>
    Task WriteMetadataAsync(string directory, SrMetadata metadata, CancellationToken cancellationToken) =>
        SrMetadataFile.WriteAsync(directory, metadata, cancellationToken);

    /// <summary>Checks the directory is usable (creating it if asked) before the SR is recorded.</summary>
    Task ProbeAsync(string directory, bool create, CancellationToken cancellationToken);

    /// <summary>
    /// Whether the SR keeps its metadata (<see cref="SrMetadataFile"/>) in its directory, so that it can be introduced
    /// again with its VDIs; an ISO library is the user's directory of images and is left untouched.
    /// </summary>
    bool KeepsMetadata { get; }

    /// <summary>SR.probe: the SRs at the location <paramref name="deviceConfig"/> names (none yet: an empty list).</summary>
    Task<IReadOnlyList<ProbedSr>> ProbeSrsAsync(IReadOnlyDictionary<string, string> deviceConfig, CancellationToken cancellationToken);

    /// <summary>SR.destroy, on the storage: refused (SR_NOT_EMPTY) while volumes remain; the SR's own files go.</summary>
    Task DeleteAsync(string directory, CancellationToken cancellationToken);

    Task<SrUsage> GetUsageAsync(string directory, CancellationToken cancellationToken);

    /// <summary>The volumes present in the directory, for SR.scan.</summary>
    Task<IReadOnlyList<VolumeInfo>> ScanAsync(string directory, CancellationToken cancellationToken);

    Task<VolumeInfo> CreateAsync(string directory, string vdiUuid, long virtualSize, CancellationToken cancellationToken);

    /// <summary>Makes an independent full copy of a volume (possibly into another SR's directory).</summary>
    Task<VolumeInfo> CopyAsync(string sourcePath, string targetDirectory, string newVdiUuid, CancellationToken cancellationToken);

    /// <summary>
    /// Snapshots of running disks: an empty volume of <paramref name="virtualSize"/> under a temporary name (which a scan
    /// never adopts) for QEMU to copy into; returns the path and format QEMU opens it with.
    /// </summary>
    Task<(string Path, string Format)> CreatePartialAsync(string directory, string vdiUuid, long virtualSize, CancellationToken cancellationToken) =>
        throw new XenApiException(ErrorCodes.SrOperationNotSupported, directory);

    /// <summary>A full copy of a volume into a partial one (as <see cref="CreatePartialAsync"/> names it).</summary>
    Task CopyToPartialAsync(string sourcePath, string directory, string vdiUuid, CancellationToken cancellationToken) =>
        throw new XenApiException(ErrorCodes.SrOperationNotSupported, directory);

    /// <summary>A partial volume's sizes, reported under the name it will have once complete.</summary>
    Task<VolumeInfo> PartialInfoAsync(string directory, string vdiUuid, CancellationToken cancellationToken) =>
        throw new XenApiException(ErrorCodes.SrOperationNotSupported, directory);

    /// <summary>Gives a complete partial volume its real name: from now on it is the VDI's. Repeating it is harmless.</summary>
    Task<VolumeInfo> CompletePartialAsync(string directory, string vdiUuid, CancellationToken cancellationToken) =>
        throw new XenApiException(ErrorCodes.SrOperationNotSupported, directory);

    /// <summary>Removes what an abandoned copy or snapshot into <paramref name="vdiUuid"/> left (partial or complete); nothing there is fine.</summary>
    Task DiscardAsync(string directory, string vdiUuid, CancellationToken cancellationToken) => Task.CompletedTask;

    Task<VolumeInfo> ResizeAsync(string directory, string location, long newVirtualSize, CancellationToken cancellationToken);

    Task DestroyAsync(string directory, string location, CancellationToken cancellationToken);

    /// <summary>The path QEMU opens, and the format it opens it with.</summary>
    (string Path, string Format) Resolve(string directory, string location);
}
