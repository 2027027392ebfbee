using System.Diagnostics;

namespace Corral.IntegrationTests;

/// <summary>
/// A real SMB server on loopback: Debian's Samba (smbd) as a standalone file server, sharing a temporary directory as
/// <c>//127.0.0.1/isos</c>, read-only, to one user (<see cref="User"/>, password <see cref="Password"/>; a name that
/// Samba's username map turns into the machine's root, so no account is made on the machine). Its state, locks and
/// password database are the rig's own. Port 445 is machine-wide, so one rig runs at a time (a lock file); smbd is
/// stopped by its pid whatever the test's outcome.
/// </summary>
public sealed class SmbRig : IAsyncDisposable
{
    public const string Server = "127.0.0.1";
    public const string Share = "isos";
    public const string User = "isoreader";
    public const string Password = "Iso-Reader-1";
    private const int Port = 445;
    private static readonly string LockPath = Path.Combine(Path.GetTempPath(), "corral-smb-rig.lock");

    private readonly string _root;
    private readonly FileStream _lock;
    private Process? _smbd;

    private SmbRig(string root, FileStream machineLock)
    {
        _root = root;
        _lock = machineLock;
    }

    /// <summary>The shared directory, as this machine sees it (tests put ISOs there).</summary>
    public string ShareDirectory => Path.Combine(_root, "share");

    /// <summary>The share as an ISO SR's location names it.</summary>
    public static string Location => $"//{Server}/{Share}";

    public static Task<SmbRig> StartAsync() =>
        RigProcesses.StartRigAsync(LockPath, "corral-smb-rig-", (root, machineLock) => new SmbRig(root, machineLock), rig => rig.StartServerAsync());

    private async Task StartServerAsync()
    {
        if (RigProcesses.Listening(Port))
        {
            throw new InvalidOperationException($"something already listens on {Server}:{Port}; the SMB rig needs that port");
        }

        foreach (var directory in new[] { "share", "run", "lock", "state", "cache", "private", "ncalrpc" })
        {
            Directory.CreateDirectory(Path.Combine(_root, directory));
        }

        var config = Path.Combine(_root, "smb.conf");
        await File.WriteAllTextAsync(Path.Combine(_root, "users.map"), $"root = {User}\n");
        await File.WriteAllTextAsync(config, $"""
            [global]
              server role = standalone server
              interfaces = 127.0.0.1/8
              bind interfaces only = yes
              disable netbios = yes
              smb ports = {Port}
              pid directory = {_root}/run
              lock directory = {_root}/lock
              state directory = {_root}/state
              cache directory = {_root}/cache
              private dir = {_root}/private
              ncalrpc dir = {_root}/ncalrpc
              log file = {_root}/log.%m
              passdb backend = tdbsam:{_root}/private/passdb.tdb
              username map = {_root}/users.map
              map to guest = never
            [{Share}]
              path = {ShareDirectory}
              read only = yes
              valid users = root

            """);
        await Command.RunAsync("sh", "-c", $"printf '%s\\n%s\\n' '{Password}' '{Password}' | smbpasswd -c {config} -a -s root");
        // smbd makes a process group of its own (no --no-process-group): stopping, it signals its whole group.
        _smbd = RigProcesses.Start("smbd", "-F", "-s", config);
        for (var attempt = 0; !RigProcesses.Listening(Port); attempt++)
        {
            if (_smbd.HasExited || attempt > 100)
            {
                throw new InvalidOperationException("smbd did not listen on port 445");
            }

            await Task.Delay(100);
        }
    }

    /// <summary>Stops smbd (TERM, then KILL) by its pid; the share's directory goes.</summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            await RigProcesses.StopAsync(_smbd, TimeSpan.FromSeconds(10));
            Directory.Delete(_root, recursive: true);
        }
        finally
        {
            await _lock.DisposeAsync();
        }
    }
}
