using System.Globalization;
using System.Text;
using Corral.Model;
using Corral.Platform;

namespace Corral.Storage.Nfs;

/// <summary>
/// XenServer's NFS SR (<c>type=nfs</c>, device-config server, serverpath, nfsversion) reached entirely in userspace:
/// the SR is the directory &lt;serverpath&gt;/&lt;sr uuid&gt; on the export, its VDIs qcow2 files there, made and changed
/// by qemu-img over nfs:// URLs, its own files (metadata, the probe's test file) handled through libnfs, and QEMU opens
/// the disks with its nfs block driver. Nothing is mounted in the kernel (see docs/storage.md).
/// </summary>
public sealed class NfsSrDriver : ISrDriver, ISharedVolumes
{
    public const string TypeName = "nfs";

    private const string VolumeSuffix = ".qcow2";
    private const string PartialSuffix = ".qcow2.partial";

    public string Type => TypeName;

    public string DefaultContentType => "user";

    public bool SupportsVdiCreate => true;

    public bool KeepsMetadata => true;

    /// <summary>As the file driver: create, delete, resize (offline and online), clone and snapshot (full copies).</summary>
    public IReadOnlySet<string> Features { get; } = new HashSet<string>(StringComparer.Ordinal) { "VDI_CREATE", "VDI_DELETE", "VDI_RESIZE", "VDI_RESIZE_ONLINE", "VDI_CLONE", "VDI_SNAPSHOT" };

    /// <summary>SM's checks: a server (ConfigServerMissing, 102), a serverpath (ConfigServerPathMissing, 101), a known nfsversion (NFSVersion, 72).</summary>
    public void CheckDeviceConfig(IReadOnlyDictionary<string, string> deviceConfig)
    {
        ArgumentNullException.ThrowIfNull(deviceConfig);
        RequireServer(deviceConfig);
        if (string.IsNullOrWhiteSpace(deviceConfig.GetValueOrDefault("serverpath")))
        {
            throw ServerPathMissing("");
        }

        RequireVersion(deviceConfig);
    }

    public async Task ProbeAsync(string directory, bool create, CancellationToken cancellationToken)
    {
        var url = Parse(directory);
        await NfsExport.WithAsync(url, session =>
        {
            if (create && session.Stat(url.DirectoryOnExport) is null)
            {
                try
                {
                    session.CreateDirectory(url.DirectoryOnExport);
                }
                catch (NfsException ex) when (ex.Errno != 17)
                {
                    throw SrBackend.Failure(88, "NFS SR creation error", $"remote directory creation error is {ex.Errno}");
                }
            }

            if (session.Stat(url.DirectoryOnExport) is not { IsDirectory: true })
            {
                throw SrBackend.Failure(73, "NFS mount error", $"{url.Server}:{url.Export} has no directory {url.SrDirectory}");
            }

            // A probe write proves the export is writable to this host before any VDI depends on it.
            var probe = $"{url.DirectoryOnExport}/.corral-probe-{Guid.NewGuid():N}";
            session.WriteNew(probe, "ok"u8);
            session.Delete(probe);
        }, cancellationToken);
    }

    public Task<SrUsage> GetUsageAsync(string directory, CancellationToken cancellationToken)
    {
        var url = Parse(directory);
        return NfsExport.WithAsync(url, session =>
        {
            var (total, available) = session.Usage(url.DirectoryOnExport);
            return new SrUsage(total, total - available);
        }, cancellationToken);
    }

    /// <summary>
    /// SR.probe as SM's NFS driver answers it: without a serverpath, the failure ConfigServerPathMissing carrying the
    /// server's exports (&lt;nfs-exports&gt;); with one, the SRs there: each directory named by a uuid.
    /// </summary>
    public async Task<IReadOnlyList<ProbedSr>> ProbeSrsAsync(IReadOnlyDictionary<string, string> deviceConfig, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(deviceConfig);
        var server = RequireServer(deviceConfig);
        await NfsExport.RequireServiceAsync(server, cancellationToken);
        if (string.IsNullOrWhiteSpace(deviceConfig.GetValueOrDefault("serverpath")))
        {
            var exports = await NativeBlockingCall.Run(() => ListExports(server), cancellationToken);
            throw ServerPathMissing(NfsExport.ExportsXml(server, exports));
        }

        var root = new NfsUrl(server, NfsUrl.NormalizedExport(deviceConfig["serverpath"]), "probe", RequireVersion(deviceConfig));
        return await NfsExport.WithAsync(root, session =>
        {
            var (total, available) = session.Usage("/");
            var found = new List<ProbedSr>();
            foreach (var entry in session.List("/").Where(e => e.IsDirectory && OpaqueRef.IsUuid(e.Name)).OrderBy(e => e.Name, StringComparer.Ordinal))
            {
                var metadata = TryReadMetadata(session, $"/{entry.Name}/{SrMetadataFile.FileName}");
                found.Add(new ProbedSr(entry.Name, metadata?.Sr.NameLabel ?? "", metadata?.Sr.NameDescription ?? "", total, available));
            }

            return (IReadOnlyList<ProbedSr>)found;
        }, cancellationToken);
    }

    /// <summary>SR.destroy: refused while volumes remain (SR_NOT_EMPTY); the metadata and the SR's directory go.</summary>
    public async Task DeleteAsync(string directory, CancellationToken cancellationToken)
    {
        var url = Parse(directory);
        await NfsExport.WithAsync(url, session =>
        {
            if (session.Stat(url.DirectoryOnExport) is null)
            {
                return;
            }

            if (session.List(url.DirectoryOnExport).Any(e => e.Name.EndsWith(VolumeSuffix, StringComparison.Ordinal)))
            {
                throw new XenApiException(ErrorCodes.SrNotEmpty);
            }

            try
            {
                foreach (var leftover in session.List(url.DirectoryOnExport).Where(e => !e.IsDirectory))
                {
                    session.Delete($"{url.DirectoryOnExport}/{leftover.Name}");
                }

                session.RemoveDirectory(url.DirectoryOnExport);
            }
            catch (NfsException ex) when (!ex.NotFound)
            {
                throw SrBackend.Failure(76, "Failed to remove NFS mount point", ex.Message);
            }
        }, cancellationToken);
    }

    public async Task<IReadOnlyList<VolumeInfo>> ScanAsync(string directory, CancellationToken cancellationToken)
    {
        var url = Parse(directory);
        var names = await NfsExport.WithAsync(url, session => session.List(url.DirectoryOnExport)
            .Where(e => !e.IsDirectory && e.Name.EndsWith(VolumeSuffix, StringComparison.Ordinal) && !e.Name.StartsWith('.'))
            .Select(e => e.Name)
            .Order(StringComparer.Ordinal)
            .ToList(), cancellationToken);
        var volumes = new List<VolumeInfo>();
        foreach (var name in names)
        {
            volumes.Add(await NfsExport.InfoAsync(url.VolumeUrl(name), name, cancellationToken));
        }

        return volumes;
    }

    public async Task<VolumeInfo> CreateAsync(string directory, string vdiUuid, long virtualSize, CancellationToken cancellationToken)
    {
        var url = Parse(directory);
        var name = vdiUuid + VolumeSuffix;
        await NfsExport.QemuImgAsync(cancellationToken, "create", "-q", "-f", "qcow2", url.VolumeUrl(name), Size(virtualSize));
        return await NfsExport.InfoAsync(url.VolumeUrl(name), name, cancellationToken);
    }

    /// <summary>A full copy from any path or URL qemu-img opens, written under a temporary name so a crash never leaves a half volume a scan adopts.</summary>
    public async Task<VolumeInfo> CopyAsync(string sourcePath, string targetDirectory, string newVdiUuid, CancellationToken cancellationToken)
    {
        var url = Parse(targetDirectory);
        await ConvertAsync(sourcePath, url.VolumeUrl(newVdiUuid + PartialSuffix), cancellationToken);
        return await CompletePartialAsync(targetDirectory, newVdiUuid, cancellationToken);
    }

    public async Task<(string Path, string Format)> CreatePartialAsync(string directory, string vdiUuid, long virtualSize, CancellationToken cancellationToken)
    {
        var target = Parse(directory).VolumeUrl(vdiUuid + PartialSuffix);
        await NfsExport.QemuImgAsync(cancellationToken, "create", "-q", "-f", "qcow2", target, Size(virtualSize));
        return (target, "qcow2");
    }

    public Task CopyToPartialAsync(string sourcePath, string directory, string vdiUuid, CancellationToken cancellationToken) =>
        ConvertAsync(sourcePath, Parse(directory).VolumeUrl(vdiUuid + PartialSuffix), cancellationToken);

    /// <summary>A qcow2 copy of any image qemu-img reads, an iSCSI SR's extent included (<see cref="QemuImgImage"/>).</summary>
    private static async Task ConvertAsync(string sourcePath, string targetUrl, CancellationToken cancellationToken)
    {
        using var source = QemuImgImage.Open(sourcePath);
        await NfsExport.QemuImgAsync(cancellationToken, ["convert", .. source.Options, "-O", "qcow2", source.Name, targetUrl]);
    }

    public async Task<VolumeInfo> PartialInfoAsync(string directory, string vdiUuid, CancellationToken cancellationToken) =>
        await NfsExport.InfoAsync(Parse(directory).VolumeUrl(vdiUuid + PartialSuffix), vdiUuid + VolumeSuffix, cancellationToken);

    public async Task<VolumeInfo> CompletePartialAsync(string directory, string vdiUuid, CancellationToken cancellationToken)
    {
        var url = Parse(directory);
        var partial = $"{url.DirectoryOnExport}/{vdiUuid}{PartialSuffix}";
        // Repeated after a crash that came after the rename: the volume is already complete.
        await NfsExport.WithAsync(url, session =>
        {
            if (session.Stat(partial) is not null)
            {
                session.Rename(partial, $"{url.DirectoryOnExport}/{vdiUuid}{VolumeSuffix}");
            }
        }, cancellationToken);
        return await NfsExport.InfoAsync(url.VolumeUrl(vdiUuid + VolumeSuffix), vdiUuid + VolumeSuffix, cancellationToken);
    }

    public Task DiscardAsync(string directory, string vdiUuid, CancellationToken cancellationToken)
    {
        var url = Parse(directory);
        return NfsExport.WithAsync(url, session =>
        {
            DeleteIfPresent(session, $"{url.DirectoryOnExport}/{vdiUuid}{PartialSuffix}");
            DeleteIfPresent(session, $"{url.DirectoryOnExport}/{vdiUuid}{VolumeSuffix}");
        }, cancellationToken);
    }

    public async Task<VolumeInfo> ResizeAsync(string directory, string location, long newVirtualSize, CancellationToken cancellationToken)
    {
        var path = Resolve(directory, location).Path;
        var current = await NfsExport.InfoAsync(path, location, cancellationToken);
        if (newVirtualSize < current.VirtualSize)
        {
            // Shrinking would cut off the guest's data: refused as XenServer refuses it.
            throw new XenApiException(ErrorCodes.VdiTooSmall, location, current.VirtualSize.ToString(CultureInfo.InvariantCulture));
        }

        await NfsExport.QemuImgAsync(cancellationToken, "resize", "-q", path, Size(newVirtualSize));
        return await NfsExport.InfoAsync(path, location, cancellationToken);
    }

    public Task DestroyAsync(string directory, string location, CancellationToken cancellationToken)
    {
        var url = Parse(directory);
        CheckVolumeName(location);
        return NfsExport.WithAsync(url, session => DeleteIfPresent(session, $"{url.DirectoryOnExport}/{location}"), cancellationToken);
    }

    public Task<(string Blockdev, string? Password)> VolumeAsync(string location, string srUuid, SharedVolume volume, string node, CancellationToken cancellationToken) =>
        NfsSharedVolume.EnsureAsync(Parse(location), volume, cancellationToken);

    /// <summary>The volume's nfs:// URL, which QEMU opens with its nfs block driver.</summary>
    public (string Path, string Format) Resolve(string directory, string location)
    {
        CheckVolumeName(location);
        return (Parse(directory).VolumeUrl(location), "qcow2");
    }

    public Task<SrMetadata?> ReadMetadataAsync(string directory, CancellationToken cancellationToken)
    {
        var url = Parse(directory);
        return NfsExport.WithAsync(url, session =>
        {
            var path = $"{url.DirectoryOnExport}/{SrMetadataFile.FileName}";
            return session.Stat(path) is null ? null : SrMetadataFile.Parse(Encoding.UTF8.GetString(session.ReadAll(path)), directory);
        }, cancellationToken);
    }

    /// <summary>Written to a new file, synced, then renamed over the old (NFS's rename is atomic on the server).</summary>
    public Task WriteMetadataAsync(string directory, SrMetadata metadata, CancellationToken cancellationToken)
    {
        var url = Parse(directory);
        var bytes = SrMetadataFile.Serialize(metadata);
        return NfsExport.WithAsync(url, session =>
        {
            var path = $"{url.DirectoryOnExport}/{SrMetadataFile.FileName}";
            var temporary = $"{path}.{Guid.NewGuid():N}.tmp";
            try
            {
                session.WriteNew(temporary, bytes);
                session.Rename(temporary, path);
            }
            catch
            {
                DeleteIfPresent(session, temporary);
                throw;
            }
        }, cancellationToken, asIoError: true);
    }

    private static SrMetadata? TryReadMetadata(NfsSession session, string path)
    {
        try
        {
            return session.Stat(path) is null ? null : SrMetadataFile.Parse(Encoding.UTF8.GetString(session.ReadAll(path)), path);
        }
        catch (Exception ex) when (ex is InvalidDataException or NfsException)
        {
            return null;
        }
    }

    private static IReadOnlyList<(string Path, IReadOnlyList<string> Groups)> ListExports(string server)
    {
        try
        {
            return NfsSession.Exports(server);
        }
        catch (NfsException ex)
        {
            throw SrBackend.Failure(73, "NFS mount error", ex.Message);
        }
    }

    private static void DeleteIfPresent(NfsSession session, string path)
    {
        try
        {
            session.Delete(path);
        }
        catch (NfsException ex) when (ex.NotFound)
        {
        }
    }

    private static string RequireServer(IReadOnlyDictionary<string, string> deviceConfig) =>
        deviceConfig.GetValueOrDefault("server") is { Length: > 0 } server && !server.Contains('/', StringComparison.Ordinal)
            ? server
            : throw SrBackend.Failure(102, "The request is missing the server parameter");

    private static int RequireVersion(IReadOnlyDictionary<string, string> deviceConfig)
    {
        try
        {
            return NfsUrl.ParseVersion(deviceConfig.GetValueOrDefault("nfsversion"));
        }
        catch (FormatException ex)
        {
            throw SrBackend.Failure(72, "Required NFS server version unsupported", ex.Message);
        }
    }

    /// <summary>SM's ConfigServerPathMissing (101); a probe puts the server's exports in the error's last parameter.</summary>
    private static XenApiException ServerPathMissing(string exportsXml) =>
        new($"{ErrorCodes.SrBackendFailure}_101", "", "The request is missing the serverpath parameter", exportsXml);

    private static NfsUrl Parse(string directory)
    {
        try
        {
            return NfsUrl.Parse(directory);
        }
        catch (FormatException ex)
        {
            throw SrBackend.Unavailable(ex.Message);
        }
    }

    private static void CheckVolumeName(string location)
    {
        if (location.Contains('/', StringComparison.Ordinal) || location.StartsWith('.') || location.Length == 0)
        {
            throw new XenApiException(ErrorCodes.InvalidValue, "location", location);
        }
    }

    private static string Size(long bytes) => bytes.ToString(CultureInfo.InvariantCulture);
}
