using System.Text.Json;
using Corral.Model;
using Corral.Platform;

namespace Corral.Storage;

/// <summary>
/// An SR that is a directory of qcow2 files: a local disk, or a shared mount (NFS, CIFS) that every host sees at the
/// same path, which is what lets a VM start or move anywhere.
/// </summary>
public sealed class FileSrDriver : ISrDriver
{
    public const string TypeName = "file";

    public string Type => TypeName;

    public string DefaultContentType => "user";

    public bool SupportsVdiCreate => true;

    /// <summary>Create, delete, resize (offline and online), clone and snapshot (each a full copy) volumes.</summary>
    public IReadOnlySet<string> Features { get; } = new HashSet<string>(StringComparer.Ordinal) { "VDI_CREATE", "VDI_DELETE", "VDI_RESIZE", "VDI_RESIZE_ONLINE", "VDI_CLONE", "VDI_SNAPSHOT" };

    public Task ProbeAsync(string directory, bool create, CancellationToken cancellationToken)
    {
        if (!Path.IsPathFullyQualified(directory))
        {
            throw new XenApiException(ErrorCodes.SrBackendFailure, "SR_BACKEND_FAILURE_LOCATION", "", $"location must be an absolute path: {directory}");
        }

        if (create)
        {
            Directory.CreateDirectory(directory);
        }

        if (!Directory.Exists(directory))
        {
            throw new XenApiException(ErrorCodes.SrBackendFailure, "SR_BACKEND_FAILURE_LOCATION", "", $"no such directory: {directory}");
        }

        // A probe write proves the mount is writable before any VDI depends on it.
        var probe = Path.Combine(directory, $".corral-probe-{Guid.NewGuid():N}");
        File.WriteAllText(probe, "ok");
        File.Delete(probe);
        return Task.CompletedTask;
    }

    public Task<SrUsage> GetUsageAsync(string directory, CancellationToken cancellationToken) => Task.FromResult(Usage(directory));

    public bool KeepsMetadata => true;

    /// <summary>The SR whose metadata the directory holds (the directory is the SR: at most one), or none.</summary>
    public async Task<IReadOnlyList<ProbedSr>> ProbeSrsAsync(IReadOnlyDictionary<string, string> deviceConfig, CancellationToken cancellationToken)
    {
        if (!deviceConfig.TryGetValue("location", out var directory) || string.IsNullOrWhiteSpace(directory))
        {
            throw SrBackend.LocationMissing();
        }

        if (!Path.IsPathFullyQualified(directory) || !Directory.Exists(directory))
        {
            throw SrBackend.Unavailable($"no such directory: {directory}");
        }

        SrMetadata? metadata;
        try
        {
            metadata = await SrMetadataFile.ReadAsync(directory, cancellationToken);
        }
        catch (InvalidDataException ex)
        {
            throw SrBackend.Unavailable(ex.Message);
        }

        if (metadata is null)
        {
            return [];
        }

        var usage = Usage(directory);
        return [new ProbedSr(metadata.Sr.Uuid, metadata.Sr.NameLabel, metadata.Sr.NameDescription, usage.PhysicalSize, usage.PhysicalSize - usage.PhysicalUtilisation)];
    }

    public async Task DeleteAsync(string directory, CancellationToken cancellationToken)
    {
        if (Directory.Exists(directory))
        {
            if ((await ScanAsync(directory, cancellationToken)).Count > 0)
            {
                throw new XenApiException(ErrorCodes.SrNotEmpty);
            }

            SrMetadataFile.Delete(directory);
        }
    }

    internal static SrUsage Usage(string directory)
    {
        var drive = new DriveInfo(Path.GetFullPath(directory));
        return new SrUsage(drive.TotalSize, drive.TotalSize - drive.AvailableFreeSpace);
    }

    public async Task<IReadOnlyList<VolumeInfo>> ScanAsync(string directory, CancellationToken cancellationToken)
    {
        var volumes = new List<VolumeInfo>();
        foreach (var file in Directory.EnumerateFiles(directory, "*.qcow2").Order(StringComparer.Ordinal))
        {
            volumes.Add(await InfoAsync(file, cancellationToken));
        }

        return volumes;
    }

    public async Task<VolumeInfo> CreateAsync(string directory, string vdiUuid, long virtualSize, CancellationToken cancellationToken)
    {
        var path = Path.Combine(directory, vdiUuid + ".qcow2");
        await QemuImg(cancellationToken, "create", "-q", "-f", "qcow2", path, virtualSize.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return await InfoAsync(path, cancellationToken);
    }

    public async Task<VolumeInfo> CopyAsync(string sourcePath, string targetDirectory, string newVdiUuid, CancellationToken cancellationToken)
    {
        var target = Path.Combine(targetDirectory, newVdiUuid + ".qcow2");
        var temporary = target + ".partial";
        // Written under a temporary name so a crash mid-copy never leaves a half volume that a scan would adopt.
        await ConvertAsync(sourcePath, temporary, cancellationToken);
        File.Move(temporary, target);
        return await InfoAsync(target, cancellationToken);
    }

    public async Task<(string Path, string Format)> CreatePartialAsync(string directory, string vdiUuid, long virtualSize, CancellationToken cancellationToken)
    {
        var path = PartialPath(directory, vdiUuid);
        await QemuImg(cancellationToken, "create", "-q", "-f", "qcow2", path, virtualSize.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return (path, "qcow2");
    }

    public Task CopyToPartialAsync(string sourcePath, string directory, string vdiUuid, CancellationToken cancellationToken) =>
        ConvertAsync(sourcePath, PartialPath(directory, vdiUuid), cancellationToken);

    /// <summary>A qcow2 copy of any image qemu-img reads, an iSCSI SR's extent included (<see cref="QemuImgImage"/>).</summary>
    private static async Task ConvertAsync(string sourcePath, string target, CancellationToken cancellationToken)
    {
        using var source = QemuImgImage.Open(sourcePath);
        await QemuImg(cancellationToken, ["convert", .. source.Options, "-O", "qcow2", source.Name, target]);
    }

    public async Task<VolumeInfo> PartialInfoAsync(string directory, string vdiUuid, CancellationToken cancellationToken) =>
        (await InfoAsync(PartialPath(directory, vdiUuid), cancellationToken)) with { Location = vdiUuid + ".qcow2" };

    public async Task<VolumeInfo> CompletePartialAsync(string directory, string vdiUuid, CancellationToken cancellationToken)
    {
        var target = Path.Combine(directory, vdiUuid + ".qcow2");
        // Repeated after a crash that came after the rename: the volume is already complete.
        if (File.Exists(PartialPath(directory, vdiUuid)))
        {
            File.Move(PartialPath(directory, vdiUuid), target, overwrite: true);
        }

        return await InfoAsync(target, cancellationToken);
    }

    public Task DiscardAsync(string directory, string vdiUuid, CancellationToken cancellationToken)
    {
        File.Delete(PartialPath(directory, vdiUuid));
        File.Delete(Path.Combine(directory, vdiUuid + ".qcow2"));
        return Task.CompletedTask;
    }

    private static string PartialPath(string directory, string vdiUuid) => Path.Combine(directory, vdiUuid + ".qcow2.partial");

    public async Task<VolumeInfo> ResizeAsync(string directory, string location, long newVirtualSize, CancellationToken cancellationToken)
    {
        var path = Resolve(directory, location).Path;
        var current = await InfoAsync(path, cancellationToken);
        if (newVirtualSize < current.VirtualSize)
        {
            // Shrinking would cut off the guest's data: refused as XenServer refuses it.
            throw new XenApiException(ErrorCodes.VdiTooSmall, location, current.VirtualSize.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        await QemuImg(cancellationToken, "resize", "-q", path, newVirtualSize.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return await InfoAsync(path, cancellationToken);
    }

    public Task DestroyAsync(string directory, string location, CancellationToken cancellationToken)
    {
        File.Delete(Resolve(directory, location).Path);
        return Task.CompletedTask;
    }

    public (string Path, string Format) Resolve(string directory, string location)
    {
        if (location.Contains('/', StringComparison.Ordinal) || location.StartsWith('.'))
        {
            throw new XenApiException(ErrorCodes.InvalidValue, "location", location);
        }

        return (Path.Combine(directory, location), "qcow2");
    }

    private static async Task<VolumeInfo> InfoAsync(string path, CancellationToken cancellationToken)
    {
        var json = await CommandRunner.RunCheckedAsync("qemu-img", ["info", "--output=json", "-U", path], cancellationToken);
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        return new VolumeInfo(
            Path.GetFileName(path),
            root.GetProperty("virtual-size").GetInt64(),
            root.TryGetProperty("actual-size", out var actual) ? actual.GetInt64() : new FileInfo(path).Length,
            root.GetProperty("format").GetString() ?? "qcow2");
    }

    private static async Task QemuImg(CancellationToken cancellationToken, params string[] arguments)
    {
        try
        {
            await CommandRunner.RunCheckedAsync("qemu-img", arguments, cancellationToken);
        }
        catch (CommandFailedException ex)
        {
            throw new XenApiException(ErrorCodes.SrBackendFailure, ex.Result.ExitCode.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ex.Result.StandardOutput.Trim(), ex.Result.StandardError.Trim());
        }
    }
}
