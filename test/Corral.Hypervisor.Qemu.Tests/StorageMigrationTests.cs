using System.Text.Json.Nodes;
using Corral.Hypervisor.Qemu.Tests.Infrastructure;
using Corral.Platform;
using Xunit.Abstractions;

namespace Corral.Hypervisor.Qemu.Tests;

/// <summary>
/// Storage live migration at QEMU's level: the source mirrors its disk into the destination's NBD export while the
/// guest runs, the RAM follows, and the destination's file ends a complete copy, writes made during the mirror included.
/// </summary>
[Collection(QemuVmCollection.Name)]
public sealed class StorageMigrationTests(ITestOutputHelper output)
{
    [GuestImageFact]
    public async Task A_running_guest_moves_with_its_disk_copied_over_nbd_and_nothing_written_is_lost()
    {
        await using var rig = new QemuRig(output);
        var source = rig.NewHypervisor();
        var destination = rig.NewHypervisor(o => o.RuntimeDirectory = Path.Combine(rig.Root, "vms-dest"));
        var spec = await rig.GuestSpecAsync(paravirtual: true);
        var sourceDisk = spec.Disks[0].Path!;
        var targetDisk = Path.Combine(rig.Root, "target.qcow2");
        var info = await CommandRunner.RunCheckedAsync("qemu-img", ["info", "--output=json", "-U", sourceDisk], CancellationToken.None);
        var size = JsonNode.Parse(info)!["virtual-size"]!.GetValue<long>();
        await CommandRunner.RunCheckedAsync("qemu-img", ["create", "-q", "-f", "qcow2", targetDisk, size.ToString(System.Globalization.CultureInfo.InvariantCulture)],
            CancellationToken.None);

        var sender = (QemuVmProcess)await source.StartAsync(spec, CancellationToken.None);
        await QemuRig.WaitForConsoleAsync(QemuRig.PathsOf(rig, spec.VmUuid).ConsoleLog, VmLifecycleTests.Ready, VmLifecycleTests.BootTimeout);

        var migrationPort = QemuRig.FreePort();
        var nbdPort = QemuRig.FreePort();
        var incomingSpec = spec with
        {
            Disks = [spec.Disks[0] with { Path = targetDisk }],
            IncomingMigration = $"tcp:127.0.0.1:{migrationPort}",
        };
        var receiver = (QemuVmProcess)await destination.StartAsync(incomingSpec, CancellationToken.None);
        await receiver.ExportDisksAsync("127.0.0.1", nbdPort, [0], CancellationToken.None);

        await sender.StartDiskMirrorAsync(0, "127.0.0.1", nbdPort, CancellationToken.None);
        await QemuRig.WaitUntilAsync(async () => (await sender.QueryDiskMirrorsAsync(CancellationToken.None)).Single().Ready, "the mirror to catch up");
        var mirror = (await sender.QueryDiskMirrorsAsync(CancellationToken.None)).Single();
        // Only what the image holds is copied (16 MiB of the 112), all of it by now.
        Assert.True(mirror.Length > 0 && mirror.Offset == mirror.Length, $"{mirror.Offset}/{mirror.Length}");
        Assert.False(mirror.Failed);

        // A write made after the mirror caught up must reach the copy too.
        await sender.Qmp.ExecuteAsync("human-monitor-command",
            new JsonObject { ["command-line"] = "qemu-io drive0 \"write -P 0xab 100M 64k\"" }, CancellationToken.None);

        await sender.StartMigrationAsync($"tcp:127.0.0.1:{migrationPort}", MigrationTuning.Default, CancellationToken.None);
        await QemuRig.WaitUntilAsync(async () => (await sender.QueryMigrationAsync(CancellationToken.None)).Status == MigrationStatus.PreSwitchover, "pre-switchover");
        await sender.CompleteDiskMirrorsAsync(CancellationToken.None);
        Assert.Empty(await sender.QueryDiskMirrorsAsync(CancellationToken.None));
        await receiver.StopDiskExportAsync(CancellationToken.None);
        await sender.ContinueMigrationAsync(CancellationToken.None);
        await QemuRig.WaitUntilAsync(async () => await receiver.QueryStateAsync(CancellationToken.None) == VmRunState.Running, "the destination to run the guest");
        Assert.Equal(MigrationStatus.Completed, (await sender.QueryMigrationAsync(CancellationToken.None)).Status);

        // The destination's disk is active and writable after the switchover (the export let go of it first).
        var write = await receiver.Qmp.ExecuteAsync("human-monitor-command",
            new JsonObject { ["command-line"] = "qemu-io drive0 \"write -P 0xcd 101M 4k\"" }, CancellationToken.None);
        Assert.DoesNotContain("error", write!.GetValue<string>(), StringComparison.OrdinalIgnoreCase);

        await sender.KillAsync(CancellationToken.None);
        await receiver.KillAsync(CancellationToken.None);
        await sender.DisposeAsync();
        await receiver.DisposeAsync();

        var mirrored = await CommandRunner.RunAsync("qemu-io", ["-f", "qcow2", "-c", "read -P 0xab 100M 64k", targetDisk], CancellationToken.None);
        Assert.Contains("read 65536/65536", mirrored.StandardOutput, StringComparison.Ordinal);
        Assert.DoesNotContain("Pattern verification failed", mirrored.StandardOutput, StringComparison.Ordinal);
        // Apart from the destination's own later write, the copy is the source's disk, block for block.
        await CommandRunner.RunCheckedAsync("qemu-io", ["-f", "qcow2", "-c", "write -P 0xcd 101M 4k", sourceDisk], CancellationToken.None);
        var compare = await CommandRunner.RunAsync("qemu-img", ["compare", "-f", "qcow2", "-F", "qcow2", sourceDisk, targetDisk], CancellationToken.None);
        Assert.True(compare.ExitCode == 0, compare.StandardOutput + compare.StandardError);
        var check = await CommandRunner.RunAsync("qemu-img", ["check", targetDisk], CancellationToken.None);
        Assert.Equal(0, check.ExitCode);
    }

    [GuestImageFact]
    public async Task An_abandoned_mirror_leaves_the_source_running_with_no_job_behind()
    {
        await using var rig = new QemuRig(output);
        var source = rig.NewHypervisor();
        var destination = rig.NewHypervisor(o => o.RuntimeDirectory = Path.Combine(rig.Root, "vms-dest"));
        var spec = await rig.GuestSpecAsync(paravirtual: true);
        var targetDisk = Path.Combine(rig.Root, "target.qcow2");
        await CommandRunner.RunCheckedAsync("qemu-img", ["create", "-q", "-f", "qcow2", targetDisk, "1G"], CancellationToken.None);
        var sender = (QemuVmProcess)await source.StartAsync(spec, CancellationToken.None);
        var receiver = (QemuVmProcess)await destination.StartAsync(spec with
        {
            Disks = [spec.Disks[0] with { Path = targetDisk }],
            IncomingMigration = $"tcp:127.0.0.1:{QemuRig.FreePort()}",
        }, CancellationToken.None);
        var nbdPort = QemuRig.FreePort();
        await receiver.ExportDisksAsync("127.0.0.1", nbdPort, [0], CancellationToken.None);
        await sender.StartDiskMirrorAsync(0, "127.0.0.1", nbdPort, CancellationToken.None);

        // The destination dies mid-copy: the mirror fails, the source keeps its VM.
        await receiver.KillAsync(CancellationToken.None);
        await receiver.DisposeAsync();
        await sender.AbandonDiskMirrorsAsync(CancellationToken.None);
        Assert.Empty(await sender.QueryDiskMirrorsAsync(CancellationToken.None));
        Assert.Equal(VmRunState.Running, await sender.QueryStateAsync(CancellationToken.None));
        await sender.KillAsync(CancellationToken.None);
        await sender.DisposeAsync();
        Assert.Empty(rig.LiveQemus());
    }
}
