using System.Diagnostics;

namespace Corral.IntegrationTests;

/// <summary>
/// A real userspace iSCSI target on loopback: Debian's tgt (tgtd) serving one target whose LUN 1 is a sparse file,
/// optionally behind CHAP. iSCSI's port (3260) is machine-wide, so one rig runs at a time: a lock file serialises
/// rigs across test processes, and tgtd's control socket gets a port number of its own (-C) so the rig never talks to
/// another tgtd. tgtd is stopped by its pid whatever the test's outcome.
/// </summary>
public sealed class TgtRig : IAsyncDisposable
{
    public const string Address = "127.0.0.1";
    public const int Port = 3260;
    public const string Iqn = "iqn.2026-12.org.corral:sr";

    /// <summary>tgt's LUN 1 of target 1 as udev's scsi_id names it (its NAA designator), as XenServer shows it.</summary>
    public const string ScsiId = "360000000000000000e00000000010001";

    /// <summary>The same LUN by its T10 vendor designator alone ("IET     00010001"), the id Corral showed before it read NAA designators.</summary>
    public const string T10ScsiId = "1IET_00010001";

    private const string ControlPort = "9326";
    private static readonly string LockPath = Path.Combine(Path.GetTempPath(), "corral-tgt-rig.lock");

    private readonly string _root;
    private readonly FileStream _lock;
    private Process? _tgtd;

    private TgtRig(string root, FileStream machineLock)
    {
        _root = root;
        _lock = machineLock;
    }

    /// <summary>The LUN's backing file, as this machine sees it (to look at what the target holds).</summary>
    public string BackingFile => Path.Combine(_root, "lun1.img");

    /// <param name="initiator">The one initiator name the target admits (tgt's initiator-name ACL); any initiator when null.</param>
    public static Task<TgtRig> StartAsync(long lunSize = 256L << 20, (string User, string Password)? chap = null, string? initiator = null) =>
        RigProcesses.StartRigAsync(LockPath, "corral-tgt-rig-", (root, machineLock) => new TgtRig(root, machineLock), rig => rig.StartTargetAsync(lunSize, chap, initiator));

    private async Task StartTargetAsync(long lunSize, (string User, string Password)? chap, string? initiator)
    {
        if (RigProcesses.Listening(Port))
        {
            throw new InvalidOperationException($"something already listens on {Address}:{Port}; the iSCSI rig needs that port");
        }

        await using (var file = new FileStream(BackingFile, FileMode.CreateNew))
        {
            file.SetLength(lunSize);
        }

        _tgtd = RigProcesses.Start("tgtd", "-f", "-C", ControlPort, "--iscsi", $"portal={Address}:{Port}");
        for (var attempt = 0; !RigProcesses.Listening(Port); attempt++)
        {
            if (_tgtd.HasExited || attempt > 100)
            {
                throw new InvalidOperationException("tgtd did not listen on port 3260");
            }

            await Task.Delay(100);
        }

        await AdminAsync("--op", "new", "--mode", "target", "--tid", "1", "-T", Iqn);
        await AdminAsync("--op", "new", "--mode", "logicalunit", "--tid", "1", "--lun", "1", "-b", BackingFile);
        await AdminAsync(initiator is null
            ? ["--op", "bind", "--mode", "target", "--tid", "1", "-I", "ALL"]
            : ["--op", "bind", "--mode", "target", "--tid", "1", "--initiator-name", initiator]);
        if (chap is { } c)
        {
            await AdminAsync("--op", "new", "--mode", "account", "--user", c.User, "--password", c.Password);
            await AdminAsync("--op", "bind", "--mode", "account", "--tid", "1", "--user", c.User);
        }
    }

    private static async Task AdminAsync(params string[] arguments) =>
        await Command.RunAsync("tgtadm", ["-C", ControlPort, "--lld", "iscsi", .. arguments]);

    /// <summary>Stops tgtd by its pid (TERM, then KILL: tgtd ignores TERM while it has targets); the LUN's file goes.</summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            await RigProcesses.StopAsync(_tgtd, TimeSpan.FromSeconds(2));
            Directory.Delete(_root, recursive: true);
        }
        finally
        {
            await _lock.DisposeAsync();
        }
    }
}
