using Corral.Model;

namespace Corral.Storage;

/// <summary>
/// An ISO library: a directory of .iso images, attached read-only as CD media. Images are added by copying files in.
/// The directory is local, or a network share: one that <paramref name="shares"/> mounts at the PBD's plug and reads
/// here as a directory (SMB, <c>//server/share</c>), or one <paramref name="remote"/> reads without a mount (NFS,
/// <c>server:/path</c>), whose images QEMU opens with its own driver.
/// </summary>
public sealed class IsoSrDriver(IShareMounts? shares = null, IRemoteIsoLibraries? remote = null) : ISrDriver
{
    public const string TypeName = "iso";

    public string Type => TypeName;

    public string DefaultContentType => "iso";

    public bool SupportsVdiCreate => false;

    /// <summary>Nothing: images are added and removed by copying files.</summary>
    public IReadOnlySet<string> Features { get; } = new HashSet<string>(StringComparer.Ordinal);

    public Task ProbeAsync(string directory, bool create, CancellationToken cancellationToken)
    {
        if (Remote(directory) is { } library)
        {
            return library.ProbeAsync(directory, cancellationToken);
        }

        directory = Local(directory);
        if (!Path.IsPathFullyQualified(directory) || !Directory.Exists(directory))
        {
            throw new XenApiException(ErrorCodes.SrBackendFailure, "SR_BACKEND_FAILURE_LOCATION", "", $"no such directory: {directory}");
        }

        return Task.CompletedTask;
    }

    public Task<SrUsage> GetUsageAsync(string directory, CancellationToken cancellationToken) =>
        Remote(directory) is { } library ? library.GetUsageAsync(directory, cancellationToken) : Task.FromResult(FileSrDriver.Usage(Local(directory)));

    public bool KeepsMetadata => false;

    /// <summary>An ISO library cannot be probed (xapi's ISO driver has no probe either).</summary>
    public Task<IReadOnlyList<ProbedSr>> ProbeSrsAsync(IReadOnlyDictionary<string, string> deviceConfig, CancellationToken cancellationToken) =>
        throw SrBackend.ProbeNotSupported();

    /// <summary>The images are the user's: destroying the library forgets it and leaves them.</summary>
    public Task DeleteAsync(string directory, CancellationToken cancellationToken) => Task.CompletedTask;

    public Task<IReadOnlyList<VolumeInfo>> ScanAsync(string directory, CancellationToken cancellationToken)
    {
        if (Remote(directory) is { } library)
        {
            return library.ScanAsync(directory, cancellationToken);
        }

        IReadOnlyList<VolumeInfo> volumes = Directory.EnumerateFiles(Local(directory))
            .Where(IsImage)
            .Order(StringComparer.Ordinal)
            .Select(f => new FileInfo(f))
            .Select(f => new VolumeInfo(f.Name, f.Length, f.Length, "raw"))
            .ToList();
        return Task.FromResult(volumes);
    }

    public Task<VolumeInfo> CreateAsync(string directory, string vdiUuid, long virtualSize, CancellationToken cancellationToken) =>
        throw new XenApiException(ErrorCodes.SrOperationNotSupported, directory);

    public Task<VolumeInfo> CopyAsync(string sourcePath, string targetDirectory, string newVdiUuid, CancellationToken cancellationToken) =>
        throw new XenApiException(ErrorCodes.SrOperationNotSupported, targetDirectory);

    public Task<VolumeInfo> ResizeAsync(string directory, string location, long newVirtualSize, CancellationToken cancellationToken) =>
        throw new XenApiException(ErrorCodes.SrOperationNotSupported, directory);

    public Task DestroyAsync(string directory, string location, CancellationToken cancellationToken) =>
        throw new XenApiException(ErrorCodes.SrOperationNotSupported, directory);

    public (string Path, string Format) Resolve(string directory, string location)
    {
        if (location.Length == 0 || location.Contains('/', StringComparison.Ordinal) || location.StartsWith('.'))
        {
            throw new XenApiException(ErrorCodes.InvalidValue, "location", location);
        }

        if (Remote(directory) is { } library)
        {
            return library.Resolve(directory, location);
        }

        return (Path.Combine(Local(directory), location), "raw");
    }

    /// <summary>Whether a file of the library is an image it lists (<c>*.iso</c>, <c>*.img</c>).</summary>
    public static bool IsImage(string name) =>
        name.EndsWith(".iso", StringComparison.OrdinalIgnoreCase) || name.EndsWith(".img", StringComparison.OrdinalIgnoreCase);

    private IRemoteIsoLibraries? Remote(string location) => remote is not null && remote.Handles(location) ? remote : null;

    /// <summary>The library's directory here: a share's mount, or the location itself.</summary>
    private string Local(string location) => shares is not null && shares.Handles(location) ? shares.LocalDirectory(location) : location;
}
