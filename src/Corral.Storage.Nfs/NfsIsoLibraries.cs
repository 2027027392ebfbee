using Corral.Model;
using Corral.Platform;

namespace Corral.Storage.Nfs;

/// <summary>
/// ISO libraries on NFS shares, named as XenServer's ISO SR takes them (<c>device-config:location=server:/path</c>):
/// listed and measured through libnfs (the path mounted as it is, no kernel mount), each image opened by QEMU with its
/// nfs driver (<c>nfs://server/path/image.iso</c>). Nothing is mounted on the host, so a PBD's plug and unplug have
/// nothing to do beyond the check that the share answers.
/// </summary>
public sealed class NfsIsoLibraries : IRemoteIsoLibraries
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    public bool Handles(string location) => TryParse(location) is not null;

    /// <summary>
    /// <c>server:/path</c> (a host name or IPv4 address, then an absolute path); not <c>//server/share</c> (SMB), a
    /// local directory or a URL.
    /// </summary>
    internal static (string Server, string Path)? TryParse(string location)
    {
        var colon = location.IndexOf(":/", StringComparison.Ordinal);
        if (colon <= 0 || location.Contains("://", StringComparison.Ordinal))
        {
            return null;
        }

        var server = location[..colon];
        if (!server.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_'))
        {
            return null;
        }

        var path = location[(colon + 1)..].TrimEnd('/');
        return (server, path.Length == 0 ? "/" : path);
    }

    public async Task ProbeAsync(string location, CancellationToken cancellationToken) =>
        await WithAsync(location, session => session.Stat("/") is { IsDirectory: true }
            ? true
            : throw SrBackend.Failure(222, "Could not mount the directory specified in Device Configuration", $"{location} is not a directory"), cancellationToken);

    public async Task<IReadOnlyList<VolumeInfo>> ScanAsync(string location, CancellationToken cancellationToken) =>
        await WithAsync(location, session => session.List("/")
            .Where(e => !e.IsDirectory && IsImage(e.Name))
            .Select(e => e.Name)
            .Order(StringComparer.Ordinal)
            .Select(name => session.Stat("/" + name) is { } stat ? new VolumeInfo(name, stat.Size, stat.Size, "raw") : null)
            .OfType<VolumeInfo>()
            .ToList(), cancellationToken);

    public async Task<SrUsage> GetUsageAsync(string location, CancellationToken cancellationToken) =>
        await WithAsync(location, session =>
        {
            var (total, available) = session.Usage("/");
            return new SrUsage(total, total - available);
        }, cancellationToken);

    /// <summary>The image's URL; <paramref name="name"/> is checked by the ISO driver (a file name, not a path).</summary>
    public (string Path, string Format) Resolve(string location, string name)
    {
        var (server, path) = TryParse(location) ?? throw new XenApiException(ErrorCodes.InvalidValue, "location", location);
        return ($"{NfsUrl.Scheme}{server}{path.TrimEnd('/')}/{name}", "raw");
    }

    private static bool IsImage(string name) => !name.StartsWith('.') && IsoSrDriver.IsImage(name);

    /// <summary>Runs <paramref name="work"/> on the share's path, mounted through libnfs; SM's ISO errors when it cannot be.</summary>
    private static async Task<T> WithAsync<T>(string location, Func<NfsSession, T> work, CancellationToken cancellationToken)
    {
        var (server, path) = TryParse(location) ?? throw SrBackend.Failure(225,
            @"Incorrect Location string format. String must be in the format SERVER:PATH for NFS targets, or \\SERVER\PATH for CIFS targets", location);
        await NfsExport.RequireServiceAsync(server, cancellationToken);
        return await NativeBlockingCall.Run(() =>
        {
            try
            {
                using var session = NfsSession.Mount(server, path, 3, Timeout);
                return work(session);
            }
            catch (NfsException ex)
            {
                throw SrBackend.Failure(222, "Could not mount the directory specified in Device Configuration", $"{location}: {ex.Message}");
            }
        }, cancellationToken);
    }
}
