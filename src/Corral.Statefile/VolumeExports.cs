using System.Diagnostics;
using System.Runtime.InteropServices;
using Corral.HighAvailability;
using Corral.Platform;
using Microsoft.Extensions.Logging;

namespace Corral.Statefile;

/// <summary>
/// A volume of an NFS or iSCSI SR that the pool keeps for itself (HA's statefile, the VMs' sanlock leases) shown on
/// this host as a file: Debian's qemu-storage-daemon opens the volume with QEMU's userspace nfs or iscsi driver and
/// exports it over FUSE at the export's path, where the fence daemon, the agent and sanlock read and write it as a file
/// (O_DIRECT). The daemon runs detached (<c>--daemonize</c>), so that it outlives whichever process started it; its
/// pid is kept at <c>&lt;path&gt;.pid</c>, and the options it exports at <c>&lt;path&gt;.blockdev</c>. Whoever comes
/// first exports (under a lock file); an export whose daemon died (a stale FUSE mount) is detached and made again, and
/// so is one whose daemon is stuck: its reads hung for <see cref="ExportTimings.StuckPatience"/> while the volume answers
/// a fresh connection (<see cref="ExportHealth"/>). Through an outage of the storage itself the export is left as it is.
/// </summary>
public sealed partial class VolumeExports
{
    public static readonly EventId Exported = new(2430, "VolumeExported");
    public static readonly EventId Stale = new(2431, "VolumeExportStale");
    public static readonly EventId Stopped = new(2432, "VolumeExportStopped");
    public static readonly EventId Stuck = new(2433, "VolumeExportStuck");
    public static readonly EventId DaemonStopped = new(2434, "VolumeExportDaemonStopped");

    private readonly ILogger<VolumeExports> logger;
    private readonly ExportHealth _health;
    private readonly ExportTimings _timings;

    public VolumeExports(ILogger<VolumeExports> logger)
        : this(logger, ExportTimings.Default)
    {
    }

    /// <summary>With other timings than the default (the tests' short ones).</summary>
    internal VolumeExports(ILogger<VolumeExports> logger, ExportTimings timings)
    {
        this.logger = logger;
        _timings = timings.Validated();
        _health = new ExportHealth(_timings);
    }

    private static readonly TimeSpan StopPatience = TimeSpan.FromSeconds(5);

    /// <summary>The statefile's export (its node <c>statefile</c>, its CHAP secret <c>statefile-secret</c>).</summary>
    public Task EnsureAsync(StatefileVolume volume, CancellationToken cancellationToken) =>
        EnsureAsync(new VolumeExport(volume.Path, "statefile", volume.Blockdev, volume.Password, HeartbeatSlots.VolumeSize), cancellationToken);

    /// <summary>Makes sure <paramref name="volume"/> is exported at its path, starting qemu-storage-daemon if it is not.</summary>
    /// <exception cref="IOException">qemu-storage-daemon would not export it (its message is in the exception).</exception>
    public async Task EnsureAsync(VolumeExport volume, CancellationToken cancellationToken)
    {
        var path = volume.Path;
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var held = await LockAsync(path, cancellationToken);
        if (IsMounted(path))
        {
            var state = ReadOrNull(path + ".blockdev") == volume.Blockdev
                ? await _health.CheckAsync(volume, DaemonPid(path), cancellationToken)
                : ExportState.Dead;
            switch (state)
            {
                case ExportState.Answers or ExportState.Slow:
                    return;
                case ExportState.Stopped:
                    logger.LogWarning(DaemonStopped, "The export at {Path} does not answer: its qemu-storage-daemon is stopped (SIGSTOP), and left so", path);
                    return;
                case ExportState.StorageSilent:
                    throw new IOException($"the {volume.Node} volume's storage has not answered for {_timings.StuckPatience.TotalSeconds:F0} s (a fresh connection to it gets no answer either)");
                case ExportState.Stuck:
                    logger.LogWarning(Stuck, "The export at {Path} has not answered reads for {Seconds:F0} s while its storage answers a fresh connection: its qemu-storage-daemon is stuck, and is stopped and made again",
                        path, _timings.StuckPatience.TotalSeconds);
                    break;
                default:
                    logger.LogWarning(Stale, "The export at {Path} is stale or of another volume: it is stopped and made again", path);
                    break;
            }

            await StopLockedAsync(path, cancellationToken);
        }

        await StartAsync(volume, cancellationToken);
    }

    /// <summary>Stops the export at <paramref name="path"/>, if there is one (HA disabled, or its statefile moved).</summary>
    public async Task StopAsync(string path, CancellationToken cancellationToken)
    {
        using var held = await LockAsync(path, cancellationToken);
        await StopLockedAsync(path, cancellationToken);
    }

    private async Task StartAsync(VolumeExport volume, CancellationToken cancellationToken)
    {
        var path = volume.Path;
        if (!File.Exists(path))
        {
            File.WriteAllBytes(path, []); // FUSE mounts a file export over a regular file
        }

        var secret = path + ".secret";
        var arguments = new List<string>();
        try
        {
            if (volume.Password is { } password)
            {
                PrivateFile.Write(secret, password);
                arguments.AddRange(["--object", $"secret,id={volume.Node}-secret,file={secret}"]);
            }

            arguments.AddRange([
                "--blockdev", $"node-name={volume.Node},{volume.Blockdev}",
                "--export", $"type=fuse,id={volume.Node},node-name={volume.Node},mountpoint={path},writable=on",
                "--pidfile", path + ".pid",
                "--daemonize",
            ]);
            // No time limit of its own, as before: the daemon answers once its export is up or has failed.
            var started = await CommandRunner.RunAsync("qemu-storage-daemon", arguments, cancellationToken, Timeout.InfiniteTimeSpan);
            if (!started.Succeeded || !IsMounted(path))
            {
                throw new IOException($"qemu-storage-daemon did not export {volume.Node} at {path} ({started.ExitCode}): {(started.StandardOutput + started.StandardError).Trim()}");
            }
        }
        finally
        {
            File.Delete(secret); // read once, as the daemon started
        }

        await File.WriteAllTextAsync(path + ".blockdev", volume.Blockdev, cancellationToken);
        logger.LogInformation(Exported, "The {Node} volume is exported at {Path} by qemu-storage-daemon {Pid}", volume.Node, path, ReadOrNull(path + ".pid"));
    }

    private async Task StopLockedAsync(string path, CancellationToken cancellationToken)
    {
        if (DaemonPid(path) is null && !IsMounted(path))
        {
            File.Delete(path + ".blockdev"); // nothing exported there
            File.Delete(path);
            return;
        }

        if (DaemonPid(path) is { } pid && Signal(pid, SigTerm))
        {
            // Asked to stop, the daemon unmounts its export and exits.
            var deadline = Stopwatch.StartNew();
            while (Signal(pid, 0) && deadline.Elapsed < StopPatience)
            {
                await Task.Delay(50, cancellationToken);
            }

            Signal(pid, SigKill);
        }

        if (IsMounted(path))
        {
            _ = Umount2(path, MntDetach); // what a killed daemon leaves: a mount nobody answers
        }

        _health.Forget(path);
        File.Delete(path + ".pid");
        File.Delete(path + ".blockdev");
        if (!IsMounted(path))
        {
            File.Delete(path); // the empty file the export was mounted over
        }

        logger.LogInformation(Stopped, "The export at {Path} is stopped", path);
    }

    private static int? DaemonPid(string path) => int.TryParse(ReadOrNull(path + ".pid"), out var pid) ? pid : null;

    /// <summary>Whether a FUSE file system is mounted at <paramref name="path"/> in this process's mount namespace.</summary>
    internal static bool IsMounted(string path) => MountTable.FileSystemAt(path)?.StartsWith("fuse", StringComparison.Ordinal) == true;

    private static async Task<IDisposable> LockAsync(string path, CancellationToken cancellationToken)
    {
        while (true)
        {
            try
            {
                // FileShare.None takes an exclusive flock: the agent and the fence daemon never export at once.
                return new FileStream(path + ".lock", FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException)
            {
                await Task.Delay(50, cancellationToken);
            }
        }
    }

    private static string? ReadOrNull(string file)
    {
        try
        {
            return File.ReadAllText(file).Trim();
        }
        catch (IOException)
        {
            return null;
        }
    }

    private const int SigKill = 9, SigTerm = 15, MntDetach = 2;

    private static bool Signal(int pid, int signal) => Kill(pid, signal) == 0;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    [LibraryImport("libc", EntryPoint = "umount2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Umount2(string target, int flags);
}

/// <summary>A volume exported on this host as the file <paramref name="Path"/>.</summary>
/// <param name="Node">The block node's name in qemu-storage-daemon (the export's id too); a CHAP password in
/// <paramref name="Blockdev"/> is named <c>&lt;node&gt;-secret</c>.</param>
/// <param name="Blockdev">qemu-storage-daemon's <c>--blockdev</c> options without the node's name.</param>
/// <param name="Password">The CHAP password, written to a root-only file read once as the daemon starts.</param>
/// <param name="Size">The volume's size: a smaller file at the path is an export that no longer answers.</param>
public sealed record VolumeExport(string Path, string Node, string Blockdev, string? Password, long Size);
