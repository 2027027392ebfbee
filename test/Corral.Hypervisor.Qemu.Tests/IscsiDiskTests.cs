using System.Globalization;
using Corral.Hypervisor.Qemu.Tests.Infrastructure;
using Corral.IntegrationTests;
using Corral.Platform;
using Xunit.Abstractions;

namespace Corral.Hypervisor.Qemu.Tests;

/// <summary>
/// A guest booted from an extent of an iSCSI LUN that no kernel initiator has logged in to: the lab's test image
/// written raw into the extent with qemu-img's iscsi driver on a real userspace target (tgt on loopback), then opened
/// by QEMU's own iscsi driver (libiscsi) under a raw node bounded to the extent, as an iSCSI SR's VDIs are.
/// </summary>
[Collection(QemuVmCollection.Name)]
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class IscsiDiskTests(ITestOutputHelper output)
{
    private const long Offset = 8L << 20;

    /// <summary>Where a second extent starts, past the guest's image (under 128 MiB).</summary>
    private const long SecondOffset = 200L << 20;

    /// <summary>Where the snapshot of the running disk goes, past the second extent, in the rig's 512 MiB LUN.</summary>
    private const long SnapshotOffset = 256L << 20;

    /// <summary>The target admits only the host's initiator name, which the disk's path names and QEMU logs in under.</summary>
    [GuestImageFact]
    public Task A_guest_boots_from_an_extent_of_an_iscsi_lun_qemu_opens_through_its_iscsi_driver() => BootAsync(chap: null);

    private const string HostIqn = "iqn.2026-12.org.corral.test:qemu-host";

    /// <summary>
    /// Behind CHAP: QEMU logs in with the credentials of the disk's iSCSI URL (as the SR's PBD gives them), its password
    /// in a secret object read from a root-only file.
    /// </summary>
    [GuestImageFact]
    public Task A_guest_boots_from_an_extent_of_a_lun_behind_chap() => BootAsync(("corral", "s3cret-pass"));

    private async Task BootAsync((string User, string Password)? chap)
    {
        var initiator = chap is null ? HostIqn : null;
        await using var tgt = await TgtRig.StartAsync(512L << 20, chap, initiator);
        await using var rig = new QemuRig(output);
        var image = Path.Combine(await GuestImages.EnsureAsync(), GuestImages.TestImageName);
        var size = await VirtualSizeAsync(image);
        // Bytes either side of the extent that must come through untouched.
        await using (var lun = new FileStream(tgt.BackingFile, FileMode.Open, FileAccess.Write))
        {
            lun.Position = Offset - 4096;
            lun.Write(Marker);
            lun.Position = Offset + size;
            lun.Write(Marker);
            lun.Position = SnapshotOffset + size;
            lun.Write(Marker);
        }

        var target = $"driver=raw,offset={N(Offset)},size={N(size)},file.driver=iscsi,file.transport=tcp,file.portal={TgtRig.Address}:{TgtRig.Port}," +
                     $"file.target={TgtRig.Iqn},file.lun=1" + (initiator is null ? "" : $",file.initiator-name={initiator}");
        string[] secret = [];
        if (chap is { } c)
        {
            target += $",file.user={c.User},file.password-secret=chap0";
            secret = ["--object", $"secret,id=chap0,data={c.Password}"];
        }

        await CommandRunner.RunCheckedAsync("qemu-img", ["convert", .. secret, "-n", image, "--target-image-opts", target], CancellationToken.None);

        var credentials = chap is { } k ? $"{k.User}%{k.Password}@" : "";
        var query = initiator is null ? "" : $"?initiator={initiator}";
        var path = $"iscsi://{credentials}{TgtRig.Address}:{TgtRig.Port}/{TgtRig.Iqn}/1{query}#{N(Offset)}+{N(size)}";
        var spec = rig.Spec(paravirtual: true, [new DiskSpec(0, path, "raw", false, false, true)]);
        var process = (QemuVmProcess)await rig.NewHypervisor().StartAsync(spec, CancellationToken.None);
        var paths = QemuRig.PathsOf(rig, spec.VmUuid);
        await QemuRig.WaitForConsoleAsync(paths.ConsoleLog, VmLifecycleTests.Ready, VmLifecycleTests.BootTimeout);

        // The CHAP password reached QEMU in a secret object's root-only file, not on its command line, which anyone reads.
        if (chap is { } secret2)
        {
            Assert.DoesNotContain(secret2.Password, await File.ReadAllTextAsync($"/proc/{process.ProcessId}/cmdline"), StringComparison.Ordinal);
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(paths.ChapSecret(0)));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(paths.Directory));
        }

        if (chap is not null)
        {
            // Plugged while the guest runs, a second extent of the LUN behind CHAP: its password goes over QMP as a
            // secret object, which goes with the disk.
            var second = new DiskSpec(1, $"iscsi://{credentials}{TgtRig.Address}:{TgtRig.Port}/{TgtRig.Iqn}/1#{N(SecondOffset)}+{N(16L << 20)}", "raw", false, false, false);
            await process.AttachDiskAsync(second, CancellationToken.None);
            await GuestShell.WaitForAsync(process, paths.ConsoleLog, "ls /sys/block", d => d.Contains("vdb"), TimeSpan.FromSeconds(60));
            Assert.True(await process.DetachDiskAsync(1, TimeSpan.FromSeconds(60), CancellationToken.None));
        }

        // A snapshot of the running disk, as SnapshotVolumes takes one on an iSCSI SR: QEMU's backup job copies it into
        // another extent of the LUN, opened with the same credentials (a secret object of its own over QMP).
        var snapshot = $"iscsi://{credentials}{TgtRig.Address}:{TgtRig.Port}/{TgtRig.Iqn}/1{query}#{N(SnapshotOffset)}+{N(size)}";
        await process.BackupDisksAsync([new DiskBackupTarget(0, snapshot, "raw")], quiesce: false, CancellationToken.None);

        // QEMU reads the disk over iSCSI (a connection to the target), never as a file of this machine's.
        var descriptors = new DirectoryInfo($"/proc/{process.ProcessId}/fd").EnumerateFileSystemInfos().Select(fd => fd.LinkTarget).ToList();
        Assert.DoesNotContain(tgt.BackingFile, descriptors);
        Assert.True(await ConnectedToPortAsync(descriptors, TgtRig.Port), "QEMU holds a TCP connection to the iSCSI target's port");
        await process.KillAsync(CancellationToken.None);
        await process.DisposeAsync();

        await using var check = new FileStream(tgt.BackingFile, FileMode.Open, FileAccess.Read);
        Assert.Equal(Marker, ReadAt(check, Offset - 4096));
        Assert.Equal(Marker, ReadAt(check, Offset + size));
        Assert.Equal(Marker, ReadAt(check, SnapshotOffset + size));
        // The boot sector and partition table, which the guest does not write, are the snapshot's too.
        Assert.Equal(ReadAt(check, Offset, 1 << 20), ReadAt(check, SnapshotOffset, 1 << 20));
        Assert.Contains(ReadAt(check, SnapshotOffset, 1 << 20), b => b != 0);
    }

    private static readonly byte[] Marker = "corral-extent-edge"u8.ToArray();

    private static byte[] ReadAt(FileStream stream, long position, int length = 0)
    {
        var bytes = new byte[length > 0 ? length : Marker.Length];
        stream.Position = position;
        stream.ReadExactly(bytes);
        return bytes;
    }

    private static string N(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static async Task<long> VirtualSizeAsync(string image)
    {
        var json = await CommandRunner.RunCheckedAsync("qemu-img", ["info", "--output=json", "-U", image], CancellationToken.None);
        return System.Text.Json.JsonDocument.Parse(json).RootElement.GetProperty("virtual-size").GetInt64();
    }

    /// <summary>Whether one of the process's sockets (fd links "socket:[inode]") is a TCP connection to <paramref name="port"/>.</summary>
    private static async Task<bool> ConnectedToPortAsync(IEnumerable<string?> descriptors, int port)
    {
        var sockets = descriptors.Where(d => d is not null && d.StartsWith("socket:[", StringComparison.Ordinal))
            .Select(d => d![8..^1])
            .ToHashSet(StringComparer.Ordinal);
        var suffix = ":" + port.ToString("X4", CultureInfo.InvariantCulture);
        foreach (var table in new[] { "/proc/net/tcp", "/proc/net/tcp6" })
        {
            foreach (var line in (await File.ReadAllLinesAsync(table)).Skip(1))
            {
                var columns = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (columns.Length > 9 && columns[2].EndsWith(suffix, StringComparison.Ordinal) && sockets.Contains(columns[9]))
                {
                    return true;
                }
            }
        }

        return false;
    }
}
