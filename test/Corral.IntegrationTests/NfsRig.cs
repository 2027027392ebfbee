using System.Diagnostics;

namespace Corral.IntegrationTests;

/// <summary>
/// A real userspace NFS server on loopback: Debian's nfs-ganesha with its VFS backend exporting a temporary directory
/// over NFSv3 and NFSv4 (TCP, bound to 127.0.0.1, no grace period), registered with rpcbind (started here when nothing
/// listens on port 111; Debian's rpcbind cannot be bound to one address, but only loopback clients ever reach it).
/// NFS's ports are fixed (2049, the mount service on 20048), so one rig runs at a time on the machine: a lock file
/// serialises rigs across test processes. Everything started is stopped by its pid, whatever the test's outcome.
/// </summary>
public sealed class NfsRig : IAsyncDisposable
{
    public const string Server = "127.0.0.1";
    private const int NfsPort = 2049;
    private const int MountPort = 20048;
    private const int PortmapPort = 111;
    private static readonly string LockPath = Path.Combine(Path.GetTempPath(), "corral-nfs-rig.lock");

    private readonly string _root;
    private readonly FileStream _lock;
    private Process? _rpcbind;
    private Process? _ganesha;

    private NfsRig(string root, FileStream machineLock)
    {
        _root = root;
        _lock = machineLock;
    }

    /// <summary>The directory exported, as this machine sees it (to look at what the server holds).</summary>
    public string ExportDirectory => Path.Combine(_root, "export");

    /// <summary>The export's path as clients name it (its NFSv4 pseudo path is the same).</summary>
    public string Export => ExportDirectory;

    public static Task<NfsRig> StartAsync() =>
        RigProcesses.StartRigAsync(LockPath, "corral-nfs-rig-", (root, machineLock) => new NfsRig(root, machineLock), rig => rig.StartServersAsync());

    private async Task StartServersAsync()
    {
        Directory.CreateDirectory(ExportDirectory);
        Directory.CreateDirectory(Path.Combine(_root, "recovery"));
        if (RigProcesses.Listening(NfsPort) || RigProcesses.Listening(MountPort))
        {
            throw new InvalidOperationException($"something already listens on {Server}:{NfsPort} or :{MountPort}; the NFS rig needs those ports");
        }

        if (!RigProcesses.Listening(PortmapPort))
        {
            _rpcbind = RigProcesses.Start("rpcbind", "-f", "-w");
            await WaitAsync(() => RigProcesses.Listening(PortmapPort), "rpcbind to listen on port 111");
        }

        var config = Path.Combine(_root, "ganesha.conf");
        await File.WriteAllTextAsync(config, $$"""
            NFS_CORE_PARAM {
              Bind_addr = {{Server}};
              Protocols = 3, 4;
              NFS_Port = {{NfsPort}};
              MNT_Port = {{MountPort}};
              Enable_NLM = false;
              Enable_RQUOTA = false;
            }
            NFSV4 { Graceless = true; RecoveryBackend = fs; RecoveryRoot = {{_root}}/recovery; }
            EXPORT {
              Export_Id = 1;
              Path = {{ExportDirectory}};
              Pseudo = {{ExportDirectory}};
              Access_Type = RW;
              Squash = No_Root_Squash;
              Protocols = 3, 4;
              Transports = TCP;
              SecType = sys;
              FSAL { Name = VFS; }
            }
            LOG { Default_Log_Level = WARN; }

            """);
        _ganesha = RigProcesses.Start("ganesha.nfsd", "-F", "-f", config, "-L", Path.Combine(_root, "ganesha.log"), "-p", Path.Combine(_root, "ganesha.pid"));
        await WaitAsync(() => RigProcesses.Listening(NfsPort) && Registered(), "nfs-ganesha to serve NFS and register its mount service");
    }

    private async Task WaitAsync(Func<bool> ready, string what)
    {
        for (var attempt = 0; attempt < 150; attempt++)
        {
            if (_ganesha is { HasExited: true } || _rpcbind is { HasExited: true })
            {
                break;
            }

            if (ready())
            {
                return;
            }

            await Task.Delay(200);
        }

        var log = Path.Combine(_root, "ganesha.log");
        throw new InvalidOperationException($"timed out waiting for {what}: {(File.Exists(log) ? await File.ReadAllTextAsync(log) : "")}");
    }

    /// <summary>Whether the portmapper knows ganesha's mount service (v3 clients, QEMU's among them, find it there).</summary>
    private static bool Registered()
    {
        using var process = Process.Start(new ProcessStartInfo("rpcinfo", ["-T", "tcp", Server, "mountd", "3"])
        {
            UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true,
        })!;
        process.WaitForExit();
        return process.ExitCode == 0;
    }

    /// <summary>Stops ganesha (TERM, then KILL), then the rpcbind started here, by their pids; the export goes.</summary>
    public async ValueTask DisposeAsync()
    {
        await RigProcesses.StopAsync(_ganesha, TimeSpan.FromSeconds(10));
        await RigProcesses.StopAsync(_rpcbind, TimeSpan.FromSeconds(10));
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        finally
        {
            await _lock.DisposeAsync();
        }
    }
}
