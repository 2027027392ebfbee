using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using Corral.Platform;
using Microsoft.Extensions.Logging;

namespace Corral.Storage.Smb;

/// <summary>
/// SMB shares mounted in userspace, where the host's kernel has no CIFS client: Debian's smbnetfs (a FUSE file system
/// over libsmbclient), one process per share, read-only, at <c>&lt;root&gt;/&lt;key&gt;/mnt</c>, where the share appears as
/// <c>&lt;server&gt;/&lt;share&gt;</c>. Its credentials are in a file of its own under the same directory (0600), removed at
/// unmount; its pid is kept there, so that whoever stops the host (the lab's <c>down</c>) finds it. The process is not
/// the agent's child in any way that ties their lives: an agent restart leaves the mount, and the next plug finds it.
/// Where an agent runs in a mount namespace of its own (a container, or a unit with private mounts), a restarted agent
/// does not see its predecessor's mount: it mounts the share again in its own, and leaves the earlier smbnetfs serving
/// the VMs that were started with it.
/// </summary>
public sealed class SmbNetFsMounts(string root, ILogger<SmbNetFsMounts> logger) : IShareMounts, IDisposable
{
    public static readonly EventId Mounted = new(2420, "SmbShareMounted");
    public static readonly EventId Unmounted = new(2421, "SmbShareUnmounted");
    public static readonly EventId MountFailed = new(2422, "SmbShareMountFailed");
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

    /// <summary>How long a mounted share may stay unreadable (refused credentials, no such share) before the plug fails.</summary>
    private static readonly TimeSpan RefusalPatience = TimeSpan.FromSeconds(3);
    private readonly SemaphoreSlim _gate = new(1, 1);

    public bool Handles(string location) => SmbShare.IsSmb(location);

    /// <summary>The mounts stay: they outlive the agent by design.</summary>
    public void Dispose() => _gate.Dispose();

    public string LocalDirectory(string location)
    {
        var share = SmbShare.Parse(location);
        return Path.Combine(MountPoint(share), share.Server, share.Share, share.Directory);
    }

    public async Task MountAsync(string location, IReadOnlyDictionary<string, string> deviceConfig, CancellationToken cancellationToken)
    {
        var share = SmbShare.Parse(location);
        var user = deviceConfig.GetValueOrDefault("username") ?? "";
        var password = deviceConfig.GetValueOrDefault("cifspassword") ?? "";
        if ((user + password).IndexOfAny(['"', '\n', '\r']) >= 0)
        {
            throw MountFailure(share, "smbnetfs cannot pass a user name or password holding a double quote or a line break");
        }

        var protocols = ClientProtocols(deviceConfig.GetValueOrDefault("vers"));

        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (IsMounted(MountPoint(share)) && Readable(LocalDirectory(location)))
            {
                return;
            }

            await UnmountCoreAsync(share, all: false, cancellationToken);
            using var process = Start(share, user, password, protocols);
            await WaitReadableAsync(share, process, LocalDirectory(location), cancellationToken);
            logger.LogInformation(Mounted, "Mounted SMB share {Share} at {MountPoint} (smbnetfs pid {Pid})", share, MountPoint(share), process.Id);
        }
        finally
        {
            _gate.Release();
        }
    }

    public async Task UnmountAsync(string location, CancellationToken cancellationToken)
    {
        var share = SmbShare.Parse(location);
        await _gate.WaitAsync(cancellationToken);
        try
        {
            await UnmountCoreAsync(share, all: true, cancellationToken);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>One directory per share and user name: <c>server_share-hash</c>, the hash telling apart names that clean alike.</summary>
    private string ShareRoot(SmbShare share)
    {
        var name = $"{share.Server}/{share.Share}";
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(name)))[..8];
        var clean = new string(name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' ? c : '_').ToArray());
        return Path.Combine(root, $"{clean}-{hash}");
    }

    private string MountPoint(SmbShare share) => Path.Combine(ShareRoot(share), "mnt");

    /// <summary>The smbnetfs processes serving the share on this host, a pid per line.</summary>
    private string PidsFile(SmbShare share) => Path.Combine(ShareRoot(share), "smbnetfs.pids");

    private string Home(SmbShare share) => Path.Combine(ShareRoot(share), "home");

    /// <summary>
    /// SM's <c>vers</c>, as libsmbclient's protocol range: <c>1.0</c> SMB1 only, <c>3.0</c> SMB3 only; none, SMB3 down
    /// to SMB1 as the server offers (SM tries 3.0, then 1.0); anything else is SM's ISOInvalidSMBversion (227).
    /// </summary>
    internal static (string Min, string Max) ClientProtocols(string? vers) => vers switch
    {
        null or "" => ("NT1", "SMB3"),
        "1.0" => ("NT1", "NT1"),
        "3.0" => ("SMB3", "SMB3"),
        _ => throw SrBackend.Failure(227, "Given SMB version is not allowed. Choose either 1.0 or 3.0", vers),
    };

    private Process Start(SmbShare share, string user, string password, (string Min, string Max) protocols)
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("smbnetfs runs on Linux");
        }

        var smb = Path.Combine(Home(share), ".smb");
        Directory.CreateDirectory(smb, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        Directory.CreateDirectory(MountPoint(share));
        var config = Path.Combine(smb, "smbnetfs.conf");
        // smbnetfs reads the samba client's settings from smb.conf beside its own: the protocols the share is spoken in.
        File.WriteAllText(Path.Combine(smb, "smb.conf"), $"[global]\n  client min protocol = {protocols.Min}\n  client max protocol = {protocols.Max}\n");
        PrivateFile.Write(config, $"show_hidden_hosts \"true\"\nauth \"{share.Server}\" \"{user}\" \"{password}\"\n");
        var info = new ProcessStartInfo("smbnetfs", ["-f", MountPoint(share), "-o", $"config={config},ro"]) { UseShellExecute = false };
        info.Environment["HOME"] = Home(share);
        var process = Process.Start(info) ?? throw MountFailure(share, "smbnetfs did not start");
        File.AppendAllText(PidsFile(share), process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture) + "\n");
        return process;
    }

    private async Task WaitReadableAsync(SmbShare share, Process process, string directory, CancellationToken cancellationToken)
    {
        var mountPoint = MountPoint(share);
        var watch = Stopwatch.StartNew();
        Stopwatch? unreadable = null; // since the mount came up with the share not readable through it
        while (IsMounted(mountPoint) is var up && !(up && Readable(directory)))
        {
            unreadable ??= up ? Stopwatch.StartNew() : null;
            if (process.HasExited || watch.Elapsed > Patience || unreadable?.Elapsed > RefusalPatience)
            {
                var mounted = !process.HasExited && IsMounted(mountPoint);
                await UnmountCoreAsync(share, all: false, cancellationToken);
                // Mounted but the share not readable: SM's ISOSharenameFailure (a share that is not there, or refused credentials).
                throw mounted
                    ? SrBackend.Failure(224, "Could not locate the ISO sharename on the target, or the access permissions may be incorrect.", share.ToString())
                    : MountFailure(share, $"smbnetfs ended with exit code {(process.HasExited ? process.ExitCode : -1)}");
            }

            await Task.Delay(200, cancellationToken);
        }
    }

    /// <summary>
    /// The share's mount here gone, with its smbnetfs; with <paramref name="all"/> false, an smbnetfs serving the share in
    /// another mount namespace (an earlier agent's, whose VMs still read their CDs through it) is left running.
    /// </summary>
    private async Task UnmountCoreAsync(SmbShare share, bool all, CancellationToken cancellationToken)
    {
        var mountPoint = MountPoint(share);
        if (IsMounted(mountPoint))
        {
            // Lazily: a reader still inside (a VM's CD being ejected) does not keep the share mounted. smbnetfs then ends.
            await CommandRunner.RunAsync("umount", ["-l", mountPoint], cancellationToken);
        }

        var kept = new List<int>();
        if (File.Exists(PidsFile(share)))
        {
            foreach (var line in await File.ReadAllLinesAsync(PidsFile(share), cancellationToken))
            {
                if (int.TryParse(line, out var pid) && Serving(pid))
                {
                    if (all || MountNamespace(pid) == MountNamespace(Environment.ProcessId))
                    {
                        StopProcess(pid);
                    }
                    else
                    {
                        kept.Add(pid);
                    }
                }
            }

            File.Delete(PidsFile(share));
        }

        if (kept.Count > 0)
        {
            await File.WriteAllLinesAsync(PidsFile(share), kept.Select(p => p.ToString(System.Globalization.CultureInfo.InvariantCulture)), cancellationToken);
        }
        else if (Directory.Exists(Home(share)))
        {
            Directory.Delete(Home(share), recursive: true); // the credentials go with the last mount
        }

        logger.LogInformation(Unmounted, "SMB share {Share} is not mounted here", share);
    }

    /// <summary>Whether <paramref name="pid"/> is a live smbnetfs (not a zombie, not a pid reused by another program).</summary>
    private static bool Serving(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var state = stat.LastIndexOf(')') + 2;
            return stat.Contains("(smbnetfs)", StringComparison.Ordinal) && state < stat.Length && "RSDTtI".Contains(stat[state], StringComparison.Ordinal);
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static string? MountNamespace(int pid) => new FileInfo($"/proc/{pid}/ns/mnt").LinkTarget;

    private static void StopProcess(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            if (process.ProcessName.StartsWith("smbnetfs", StringComparison.Ordinal) && !process.WaitForExit(TimeSpan.FromSeconds(5)))
            {
                process.Kill();
            }
        }
        catch (ArgumentException)
        {
            // Gone already.
        }
    }

    private static bool Readable(string directory)
    {
        try
        {
            _ = Directory.EnumerateFileSystemEntries(directory).Take(1).ToList();
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>Whether a file system is mounted at <paramref name="path"/>.</summary>
    private static bool IsMounted(string path) => Corral.Platform.MountTable.FileSystemAt(path) is not null;

    private Corral.Model.XenApiException MountFailure(SmbShare share, string detail)
    {
        logger.LogWarning(MountFailed, "Could not mount SMB share {Share}: {Detail}", share, detail);
        return SrBackend.Failure(222, "Could not mount the directory specified in Device Configuration", detail);
    }
}
