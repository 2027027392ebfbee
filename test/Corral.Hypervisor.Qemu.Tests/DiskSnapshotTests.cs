using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Corral.Hypervisor.Qemu.GuestAgent;
using Corral.Hypervisor.Qemu.Tests.Infrastructure;
using Corral.Platform;
using Xunit.Abstractions;

namespace Corral.Hypervisor.Qemu.Tests;

/// <summary>
/// Snapshots of a running guest's disks (VM.snapshot of a running VM): QEMU copies every disk as it was at one instant
/// while the guest goes on writing; a VM started from the copies (what a revert gives) finds what was written before
/// and nothing written after; with quiesce, the guest's qemu-ga freezes its filesystems for that instant and thaws them.
/// </summary>
[Collection(QemuVmCollection.Name)]
public sealed class DiskSnapshotTests(ITestOutputHelper output)
{
    private static readonly TimeSpan GuestTimeout = TimeSpan.FromSeconds(60);

    [GuestImageFact]
    public async Task A_running_guests_disks_are_copied_at_one_instant_and_a_vm_started_from_the_copies_has_what_was_written_before_only()
    {
        await using var rig = new QemuRig(output);
        var hypervisor = rig.NewHypervisor();
        var spec = await rig.GuestSpecAsync(paravirtual: true);
        var raw = await NewImageAsync(rig, "raw.qcow2", 16L << 20);
        spec = spec with { Disks = [.. spec.Disks, new DiskSpec(1, raw, "qcow2", false, false, false)] };
        var log = QemuRig.PathsOf(rig, spec.VmUuid).ConsoleLog;
        var copies = new List<DiskBackupTarget>();
        await using (var process = await hypervisor.StartAsync(spec, CancellationToken.None))
        {
            await QemuRig.WaitForConsoleAsync(log, VmLifecycleTests.Ready, VmLifecycleTests.BootTimeout);
            await Shell(process, log, "echo written-before > /data/marker && sync && echo ok");
            await Shell(process, log, "printf BEFORE1 | dd of=/dev/vdb conv=fsync 2>/dev/null && echo ok");

            foreach (var disk in spec.Disks)
            {
                var target = Path.Combine(rig.Root, $"snapshot{disk.Index}.qcow2");
                await CommandRunner.RunCheckedAsync("qemu-img", ["create", "-q", "-f", "qcow2", target, (await VirtualSizeAsync(disk.Path!)).ToString()], CancellationToken.None);
                copies.Add(new DiskBackupTarget(disk.Index, target, "qcow2"));
            }

            await process.BackupDisksAsync(copies, quiesce: false, CancellationToken.None);

            // The guest goes on: what it writes now is in its disks, not in the copies.
            await Shell(process, log, "echo written-after > /data/after && echo changed > /data/marker && sync && echo ok");
            await Shell(process, log, "printf AFTER22 | dd of=/dev/vdb conv=fsync 2>/dev/null && echo ok");
            Assert.Equal("AFTER22", await FirstBytesAsync(raw, 7));

            // The copies are closed in this QEMU (its nodes gone), so another process may open them.
            var qemu = (QemuVmProcess)process;
            var nodes = await qemu.Qmp.ExecuteAsync("query-named-block-nodes", new JsonObject { ["flat"] = true }, CancellationToken.None) as JsonArray;
            Assert.DoesNotContain(nodes!.OfType<JsonObject>(), n => n["node-name"]?.GetValue<string>()?.StartsWith("snap-", StringComparison.Ordinal) == true);
            await process.KillAsync(CancellationToken.None);
        }

        Assert.Equal("BEFORE1", await FirstBytesAsync(copies[1].Path, 7));

        // A VM on the copies (what VM.revert gives the VM): the data of before the snapshot, none of after.
        var reverted = rig.Spec(paravirtual: true, [new DiskSpec(0, copies[0].Path, "qcow2", false, false, true)]);
        var revertedLog = QemuRig.PathsOf(rig, reverted.VmUuid).ConsoleLog;
        await using var second = await hypervisor.StartAsync(reverted, CancellationToken.None);
        await QemuRig.WaitForConsoleAsync(revertedLog, VmLifecycleTests.Ready, VmLifecycleTests.BootTimeout);
        Assert.Equal(["written-before"], await GuestShell.RunAsync(second, revertedLog, "cat /data/marker", GuestTimeout));
        Assert.Equal(["absent"], await GuestShell.RunAsync(second, revertedLog, "test -e /data/after && echo present || echo absent", GuestTimeout));
        await second.KillAsync(CancellationToken.None);
    }

    [GuestImageFact]
    public async Task A_quiesced_snapshot_freezes_the_guests_filesystems_through_qemu_ga_and_always_thaws_them()
    {
        await using var rig = new QemuRig(output);
        var hypervisor = rig.NewHypervisor();
        var spec = await rig.GuestSpecAsync(paravirtual: true);
        var log = QemuRig.PathsOf(rig, spec.VmUuid).ConsoleLog;
        var copy = Path.Combine(rig.Root, "quiesced.qcow2");
        await CommandRunner.RunCheckedAsync("qemu-img", ["create", "-q", "-f", "qcow2", copy, (await VirtualSizeAsync(spec.Disks[0].Path!)).ToString()], CancellationToken.None);
        await using (var process = (QemuVmProcess)await hypervisor.StartAsync(spec, CancellationToken.None))
        {
            await QemuRig.WaitForConsoleAsync(log, VmLifecycleTests.Ready, VmLifecycleTests.BootTimeout);
            await QemuRig.WaitUntilAsync(() => process.LatestGuestReport is { CanFreeze: true }, TimeSpan.FromSeconds(60), "qemu-ga reporting it can freeze");

            // Written without a sync: the freeze flushes it, so the quiesced copy has it.
            await Shell(process, log, "echo quiesced-data > /data/q && echo ok");
            await process.BackupDisksAsync([new DiskBackupTarget(0, copy, "qcow2")], quiesce: true, CancellationToken.None);

            var status = await process.Qga!.AskAsync((c, ct) => c.ExecuteAsync("guest-fsfreeze-status", null, TimeSpan.FromSeconds(10), ct), CancellationToken.None);
            Assert.Equal("thawed", status!.GetValue<string>());
            Assert.Equal(["still-writable"], await GuestShell.RunAsync(process, log, "echo still-writable > /data/w && sync && cat /data/w", GuestTimeout));

            // A freeze that fails (the guest agent refuses it: already frozen) is reported, and the guest thawed.
            await process.Qga.AskAsync((c, ct) => c.ExecuteAsync("guest-fsfreeze-freeze", null, TimeSpan.FromSeconds(30), ct), CancellationToken.None);
            var second = Path.Combine(rig.Root, "refused.qcow2");
            await CommandRunner.RunCheckedAsync("qemu-img", ["create", "-q", "-f", "qcow2", second, (await VirtualSizeAsync(spec.Disks[0].Path!)).ToString()], CancellationToken.None);
            var failure = await Assert.ThrowsAsync<GuestQuiesceException>(() => process.BackupDisksAsync([new DiskBackupTarget(0, second, "qcow2")], quiesce: true, CancellationToken.None));
            Assert.False(failure.Unsupported);
            status = await process.Qga.AskAsync((c, ct) => c.ExecuteAsync("guest-fsfreeze-status", null, TimeSpan.FromSeconds(10), ct), CancellationToken.None);
            Assert.Equal("thawed", status!.GetValue<string>());
            await process.KillAsync(CancellationToken.None);
        }

        var reverted = rig.Spec(paravirtual: true, [new DiskSpec(0, copy, "qcow2", false, false, true)]);
        var revertedLog = QemuRig.PathsOf(rig, reverted.VmUuid).ConsoleLog;
        await using var fromCopy = await hypervisor.StartAsync(reverted, CancellationToken.None);
        await QemuRig.WaitForConsoleAsync(revertedLog, VmLifecycleTests.Ready, VmLifecycleTests.BootTimeout);
        Assert.Equal(["quiesced-data"], await GuestShell.RunAsync(fromCopy, revertedLog, "cat /data/q", GuestTimeout));
        await fromCopy.KillAsync(CancellationToken.None);
    }

    private static async Task Shell(IVmProcess process, string log, string command) =>
        Assert.Equal(["ok"], await GuestShell.RunAsync(process, log, command, GuestTimeout));

    private static async Task<string> NewImageAsync(QemuRig rig, string name, long size)
    {
        var path = Path.Combine(rig.Root, name);
        await CommandRunner.RunCheckedAsync("qemu-img", ["create", "-q", "-f", "qcow2", path, size.ToString()], CancellationToken.None);
        return path;
    }

    private static async Task<long> VirtualSizeAsync(string image)
    {
        var json = await CommandRunner.RunCheckedAsync("qemu-img", ["info", "--output=json", "-U", image], CancellationToken.None);
        return JsonDocument.Parse(json).RootElement.GetProperty("virtual-size").GetInt64();
    }

    /// <summary>The first bytes of the image's guest-visible contents (read with qemu-io, shared with a running QEMU).</summary>
    private static async Task<string> FirstBytesAsync(string image, int count)
    {
        var dump = Path.Combine(Path.GetDirectoryName(image)!, Path.GetFileName(image) + ".head");
        await CommandRunner.RunCheckedAsync("qemu-img", ["dd", "-U", "-f", "qcow2", "-O", "raw", $"if={image}", $"of={dump}", "bs=512", "count=1"], CancellationToken.None);
        var bytes = await File.ReadAllBytesAsync(dump);
        File.Delete(dump);
        return Encoding.ASCII.GetString(bytes, 0, count);
    }
}
