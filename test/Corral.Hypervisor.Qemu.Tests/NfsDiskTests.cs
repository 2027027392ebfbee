using Corral.Hypervisor.Qemu.Tests.Infrastructure;
using Corral.IntegrationTests;
using Corral.Platform;
using Xunit.Abstractions;

namespace Corral.Hypervisor.Qemu.Tests;

/// <summary>
/// A guest booted from a disk on an NFS export that no kernel has mounted: the lab's test image copied onto a real
/// userspace NFS server (nfs-ganesha on loopback) with qemu-img over an nfs:// URL, then opened by QEMU's own nfs block
/// driver (libnfs), as an NFS SR's VDIs are.
/// </summary>
[Collection(QemuVmCollection.Name)]
public sealed class NfsDiskTests(ITestOutputHelper output)
{
    [GuestImageFact]
    public async Task A_guest_boots_from_a_disk_qemu_opens_on_an_nfs_export_through_its_nfs_driver()
    {
        await using var nfs = await NfsRig.StartAsync();
        await using var rig = new QemuRig(output);
        var srDirectory = Guid.NewGuid().ToString();
        Directory.CreateDirectory(Path.Combine(nfs.ExportDirectory, srDirectory));
        var url = $"nfs://{NfsRig.Server}{nfs.Export}/{srDirectory}/boot.qcow2";
        var image = Path.Combine(await GuestImages.EnsureAsync(), GuestImages.TestImageName);
        await CommandRunner.RunCheckedAsync("qemu-img", ["convert", "-O", "qcow2", image, url], CancellationToken.None);
        var onServer = Path.Combine(nfs.ExportDirectory, srDirectory, "boot.qcow2");
        Assert.True(File.Exists(onServer));

        var spec = rig.Spec(paravirtual: true, [new DiskSpec(0, url, "qcow2", false, false, true)]);
        var process = (QemuVmProcess)await rig.NewHypervisor().StartAsync(spec, CancellationToken.None);
        var paths = QemuRig.PathsOf(rig, spec.VmUuid);
        await QemuRig.WaitForConsoleAsync(paths.ConsoleLog, VmLifecycleTests.Ready, VmLifecycleTests.BootTimeout);

        // QEMU reads the disk over NFS (a connection to the server), never as a file of this machine's.
        var descriptors = new DirectoryInfo($"/proc/{process.ProcessId}/fd").EnumerateFileSystemInfos().Select(fd => fd.LinkTarget).ToList();
        Assert.DoesNotContain(onServer, descriptors);
        Assert.True(await ConnectedToNfsAsync(descriptors), "QEMU holds a TCP connection to the NFS server's port");

        // A snapshot of the running disk, as SnapshotVolumes takes one: QEMU copies it into a new volume on the export.
        var copyUrl = $"nfs://{NfsRig.Server}{nfs.Export}/{srDirectory}/copy.qcow2.partial";
        var size = await VirtualSizeAsync(url);
        await CommandRunner.RunCheckedAsync("qemu-img", ["create", "-q", "-f", "qcow2", copyUrl, size.ToString(System.Globalization.CultureInfo.InvariantCulture)], CancellationToken.None);
        await process.BackupDisksAsync([new DiskBackupTarget(0, copyUrl, "qcow2")], quiesce: false, CancellationToken.None);
        Assert.Equal(size, await VirtualSizeAsync(copyUrl));
        Assert.True(new FileInfo(Path.Combine(nfs.ExportDirectory, srDirectory, "copy.qcow2.partial")).Length > 8L << 20, "the guest's data was copied");
        await process.KillAsync(CancellationToken.None);
        await process.DisposeAsync();
    }

    private static async Task<long> VirtualSizeAsync(string image)
    {
        var json = await CommandRunner.RunCheckedAsync("qemu-img", ["info", "--output=json", "-U", image], CancellationToken.None);
        return System.Text.Json.JsonDocument.Parse(json).RootElement.GetProperty("virtual-size").GetInt64();
    }

    /// <summary>Whether one of the process's sockets (fd links "socket:[inode]") is a TCP connection to port 2049.</summary>
    private static async Task<bool> ConnectedToNfsAsync(IEnumerable<string?> descriptors)
    {
        var sockets = descriptors.Where(d => d is not null && d.StartsWith("socket:[", StringComparison.Ordinal))
            .Select(d => d![8..^1])
            .ToHashSet(StringComparer.Ordinal);
        foreach (var table in new[] { "/proc/net/tcp", "/proc/net/tcp6" })
        {
            foreach (var line in (await File.ReadAllLinesAsync(table)).Skip(1))
            {
                var columns = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                // rem_address is hex address:port; 2049 is 0801.
                if (columns.Length > 9 && columns[2].EndsWith(":0801", StringComparison.Ordinal) && sockets.Contains(columns[9]))
                {
                    return true;
                }
            }
        }

        return false;
    }
}
