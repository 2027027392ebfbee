using System.Globalization;
using System.Net.Sockets;
using System.Security;
using System.Text;
using System.Text.Json;
using Corral.Model;
using Corral.Platform;

namespace Corral.Storage.Nfs;

/// <summary>
/// The NFS SR driver's reach to the server: a check that an NFS service answers, a libnfs mount of the export for the
/// files the driver manages, and qemu-img over nfs:// URLs for the volumes. Failures are reported as XenServer's NFS
/// SR reports them (SR_BACKEND_FAILURE_&lt;SM's code&gt;).
/// </summary>
internal static class NfsExport
{
    /// <summary>The port an NFS server answers on (SM checks it before anything else).</summary>
    private const int NfsPort = 2049;

    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    /// <summary>SM's NFSTarget (108): nothing answers on the server's NFS port.</summary>
    public static async Task RequireServiceAsync(string server, CancellationToken cancellationToken)
    {
        using var client = new TcpClient();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(10));
        try
        {
            await client.ConnectAsync(server, NfsPort, timeout.Token);
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            throw SrBackend.Failure(108, "Unable to detect an NFS service on this target.", $"{server}:{NfsPort}: {ex.Message}");
        }
    }

    /// <summary>Mounts the SR's export through libnfs (no kernel mount), after checking the server answers: SM's NFSMount (73) when it will not mount.</summary>
    public static async Task<NfsSession> MountAsync(NfsUrl url, CancellationToken cancellationToken)
    {
        await RequireServiceAsync(url.Server, cancellationToken);
        return await NativeBlockingCall.Run(() =>
        {
            try
            {
                return NfsSession.Mount(url.Server, url.MountPath, url.Version, Timeout);
            }
            catch (NfsException ex)
            {
                throw SrBackend.Failure(73, "NFS mount error", ex.Message);
            }
        }, cancellationToken);
    }

    /// <summary>
    /// Runs <paramref name="work"/> on a mounted session off the caller's context, unmounting after. A failed NFS call
    /// becomes SR_BACKEND_FAILURE [errno, "", libnfs's message] unless <paramref name="asIoError"/> keeps it an
    /// <see cref="IOException"/> (the metadata's writes, which the catalog logs rather than fails on).
    /// </summary>
    public static async Task<T> WithAsync<T>(NfsUrl url, Func<NfsSession, T> work, CancellationToken cancellationToken, bool asIoError = false)
    {
        using var session = await MountAsync(url, cancellationToken);
        try
        {
            return await NativeBlockingCall.Run(() => work(session), cancellationToken);
        }
        catch (NfsException ex) when (!asIoError)
        {
            throw new XenApiException(ErrorCodes.SrBackendFailure, ex.Errno.ToString(CultureInfo.InvariantCulture), "", ex.Message);
        }
    }

    public static Task WithAsync(NfsUrl url, Action<NfsSession> work, CancellationToken cancellationToken, bool asIoError = false) =>
        WithAsync(url, s =>
        {
            work(s);
            return true;
        }, cancellationToken, asIoError);

    /// <summary>SM's probe answer when no serverpath was given: the server's exports, as <c>&lt;nfs-exports&gt;</c>.</summary>
    public static string ExportsXml(string server, IEnumerable<(string Path, IReadOnlyList<string> Groups)> exports)
    {
        var xml = new StringBuilder("<?xml version=\"1.0\" ?>\n<nfs-exports>\n");
        foreach (var (path, groups) in exports)
        {
            xml.Append("\t<Export>\n")
                .Append("\t\t<Target>").Append(SecurityElement.Escape(server)).Append("</Target>\n")
                .Append("\t\t<Path>").Append(SecurityElement.Escape(path)).Append("</Path>\n")
                .Append("\t\t<Accesslist>").Append(SecurityElement.Escape(groups.Count == 0 ? "*" : string.Join(',', groups))).Append("</Accesslist>\n")
                .Append("\t</Export>\n");
        }

        return xml.Append("</nfs-exports>\n").ToString();
    }

    /// <summary>A volume's sizes and format, by qemu-img through QEMU's nfs driver.</summary>
    public static async Task<VolumeInfo> InfoAsync(string url, string location, CancellationToken cancellationToken)
    {
        var json = await QemuImgAsync(cancellationToken, "info", "--output=json", "-U", url);
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        return new VolumeInfo(
            location,
            root.GetProperty("virtual-size").GetInt64(),
            root.TryGetProperty("actual-size", out var actual) ? actual.GetInt64() : 0,
            root.GetProperty("format").GetString() ?? "qcow2");
    }

    public static async Task<string> QemuImgAsync(CancellationToken cancellationToken, params string[] arguments)
    {
        try
        {
            return await CommandRunner.RunCheckedAsync("qemu-img", arguments, cancellationToken);
        }
        catch (CommandFailedException ex)
        {
            throw new XenApiException(ErrorCodes.SrBackendFailure, ex.Result.ExitCode.ToString(CultureInfo.InvariantCulture),
                ex.Result.StandardOutput.Trim(), ex.Result.StandardError.Trim());
        }
    }
}
