using System.Text.Json;
using Corral.Hypervisor.Qemu.Tests.Infrastructure;
using Corral.Platform;
using Xunit.Abstractions;

namespace Corral.Hypervisor.Qemu.Tests;

/// <summary>
/// Disks and network cards plugged into and removed from running guests (QMP blockdev-add / netdev_add / device_add,
/// device_del answered by the guest's ACPI hot-plug), kept across an agent's re-adoption of the process and a live
/// migration; refused where the emulated device model cannot take them.
/// </summary>
[Collection(QemuVmCollection.Name)]
public sealed class HotplugTests(ITestOutputHelper output)
{
    private static readonly TimeSpan GuestTimeout = TimeSpan.FromSeconds(60);
    private const string Disks = "ls /sys/block";
    private const string Nics = "ls /sys/class/net";

    [GuestImageFact]
    public async Task A_running_guest_takes_and_releases_a_disk_and_a_nic_and_a_new_agent_knows_them()
    {
        await using var rig = new QemuRig(output);
        await using var tap = await Tap.CreateAsync();
        var spec = await rig.GuestSpecAsync(paravirtual: true);
        // A second disk from the start (index 2), to be removed while the guest runs like the one plugged later.
        var fromStart = await NewImageAsync(rig, "start.qcow2");
        spec = spec with { Disks = [.. spec.Disks, new DiskSpec(2, fromStart, "qcow2", false, false, false)] };
        var paths = QemuRig.PathsOf(rig, spec.VmUuid);
        var first = rig.NewHypervisor();
        var process = (QemuVmProcess)await first.StartAsync(spec, CancellationToken.None);
        await QemuRig.WaitForConsoleAsync(paths.ConsoleLog, VmLifecycleTests.Ready, VmLifecycleTests.BootTimeout);
        Assert.Equal(["vda", "vdb"], await GuestShell.RunAsync(process, paths.ConsoleLog, Disks, GuestTimeout));

        var plugged = await NewImageAsync(rig, "plugged.qcow2");
        var disk = await process.AttachDiskAsync(new DiskSpec(1, plugged, "qcow2", false, false, false), CancellationToken.None);
        // The lowest free slot: 3 is the agent channel, 4 and 5 the disks the VM started with.
        Assert.Equal(6, disk.PciSlot);
        var nic = await process.AttachNicAsync(new NicSpec(0, tap.Name, "02:00:00:aa:bb:01"), CancellationToken.None);
        Assert.Equal(7, nic.PciSlot);
        Assert.Equal(disk, await process.AttachDiskAsync(disk with { PciSlot = null }, CancellationToken.None));
        await Assert.ThrowsAsync<DeviceHotplugException>(() => process.AttachDiskAsync(disk with { Path = fromStart }, CancellationToken.None));

        Assert.Equal(["vda", "vdb", "vdc"], await GuestShell.WaitForAsync(process, paths.ConsoleLog, Disks, d => d.Count == 3, GuestTimeout));
        Assert.Contains("eth0", await GuestShell.WaitForAsync(process, paths.ConsoleLog, Nics, n => n.Contains("eth0"), GuestTimeout));
        Assert.True(OpenBy(process.ProcessId, plugged));

        // vm.json holds the devices as they are now, so the agent that comes next knows them.
        var saved = JsonSerializer.Deserialize<VmLaunchSpec>(await File.ReadAllTextAsync(paths.Spec))!;
        Assert.Equal([0, 1, 2], saved.Disks.Select(d => d.Index));
        Assert.Equal(nic, Assert.Single(saved.Nics));
        await first.DisposeAsync();
        var adopted = (QemuVmProcess)Assert.Single(await rig.NewHypervisor().AdoptRunningAsync(CancellationToken.None));
        Assert.Equal(process.Spec, adopted.Spec, new SpecComparer());
        var events = new EventRecorder(adopted);

        // Removing: the plugged disk, the one the VM started with, the network card.
        Assert.True(await adopted.DetachDiskAsync(1, GuestTimeout, CancellationToken.None));
        Assert.True(await adopted.DetachDiskAsync(2, GuestTimeout, CancellationToken.None));
        Assert.True(await adopted.DetachNicAsync(0, GuestTimeout, CancellationToken.None));
        await events.WaitForAsync(VmProcessEventKind.DeviceRemoved, TimeSpan.FromSeconds(10), 3);
        Assert.Equal(["vda"], await GuestShell.WaitForAsync(adopted, paths.ConsoleLog, Disks, d => d.Count == 1, GuestTimeout));
        Assert.DoesNotContain("eth0", await GuestShell.RunAsync(adopted, paths.ConsoleLog, Nics, GuestTimeout));
        // The images are closed (another VM may open them now) and the tap let go of.
        Assert.False(OpenBy(adopted.ProcessId, plugged));
        Assert.False(OpenBy(adopted.ProcessId, fromStart));
        Assert.Equal([0], adopted.Spec.Disks.Select(d => d.Index));
        Assert.Empty(adopted.Spec.Nics);
        Assert.True(await adopted.DetachDiskAsync(1, GuestTimeout, CancellationToken.None)); // gone already

        // The slot freed is the next one used.
        Assert.Equal(5, (await adopted.AttachDiskAsync(new DiskSpec(3, plugged, "qcow2", false, false, false), CancellationToken.None)).PciSlot);
        await adopted.KillAsync(CancellationToken.None);
        await adopted.DisposeAsync();
    }

    [GuestImageFact]
    public async Task A_guest_moves_live_with_the_devices_plugged_into_it()
    {
        await using var rig = new QemuRig(output);
        await using var sourceTap = await Tap.CreateAsync();
        await using var destinationTap = await Tap.CreateAsync();
        var source = rig.NewHypervisor();
        var destination = rig.NewHypervisor(o => o.RuntimeDirectory = Path.Combine(rig.Root, "vms-dest"));
        var spec = await rig.GuestSpecAsync(paravirtual: true);
        var sender = (QemuVmProcess)await source.StartAsync(spec, CancellationToken.None);
        var sourceLog = QemuRig.PathsOf(rig, spec.VmUuid).ConsoleLog;
        await QemuRig.WaitForConsoleAsync(sourceLog, VmLifecycleTests.Ready, VmLifecycleTests.BootTimeout);

        // A NIC first and a disk after it, so the disk is not where a fresh command line would put it.
        await sender.AttachNicAsync(new NicSpec(0, sourceTap.Name, "02:00:00:aa:bb:02"), CancellationToken.None);
        var image = await NewImageAsync(rig, "data.qcow2");
        await sender.AttachDiskAsync(new DiskSpec(1, image, "qcow2", false, false, false), CancellationToken.None);
        Assert.Equal(["vda", "vdb"], await GuestShell.WaitForAsync(sender, sourceLog, Disks, d => d.Count == 2, GuestTimeout));
        Assert.Equal([5, 6], new[] { sender.Spec.Nics[0].PciSlot!.Value, sender.Spec.Disks[1].PciSlot!.Value });

        // The destination starts from the source's devices as they are now (its own tap for the card).
        var port = QemuRig.FreePort();
        var incoming = sender.Spec with
        {
            Nics = [sender.Spec.Nics[0] with { TapName = destinationTap.Name }],
            IncomingMigration = $"tcp:127.0.0.1:{port}",
        };
        var receiver = (QemuVmProcess)await destination.StartAsync(incoming, CancellationToken.None);
        await sender.StartMigrationAsync($"tcp:127.0.0.1:{port}", MigrationTuning.Default, CancellationToken.None);
        await QemuRig.WaitUntilAsync(async () => (await sender.QueryMigrationAsync(CancellationToken.None)).Status == MigrationStatus.PreSwitchover, "pre-switchover");
        await sender.ContinueMigrationAsync(CancellationToken.None);
        await QemuRig.WaitUntilAsync(async () => await receiver.QueryStateAsync(CancellationToken.None) == VmRunState.Running, "the destination to run the guest");
        var migration = await sender.QueryMigrationAsync(CancellationToken.None);
        Assert.True(migration.Status == MigrationStatus.Completed, migration.Error);
        await sender.KillAsync(CancellationToken.None);
        await sender.DisposeAsync();

        // The guest goes on with both devices, and the plugged disk takes writes over there.
        var destinationLog = new VmRuntimePaths(Path.Combine(rig.Root, "vms-dest", spec.VmUuid)).ConsoleLog;
        Assert.Equal(["vda", "vdb"], await GuestShell.RunAsync(receiver, destinationLog, Disks, GuestTimeout));
        Assert.Contains("eth0", await GuestShell.RunAsync(receiver, destinationLog, Nics, GuestTimeout));
        Assert.Contains("1+0", await GuestShell.RunAsync(receiver, destinationLog, "dd if=/dev/zero of=/dev/vdb bs=4096 count=1 conv=fsync", GuestTimeout));
        Assert.True(await receiver.DetachDiskAsync(1, GuestTimeout, CancellationToken.None));
        await receiver.KillAsync(CancellationToken.None);
        await receiver.DisposeAsync();
    }

    [GuestImageFact]
    public async Task A_vm_started_before_devices_had_slots_and_ids_is_adopted_with_its_devices_where_qemu_put_them()
    {
        await using var rig = new QemuRig(output);
        var spec = await rig.GuestSpecAsync(paravirtual: true);
        var extra = await NewImageAsync(rig, "extra.qcow2");
        spec = spec with { Disks = [.. spec.Disks, new DiskSpec(1, extra, "qcow2", false, false, false)] };
        var paths = QemuRig.PathsOf(rig, spec.VmUuid);
        Directory.CreateDirectory(paths.Directory);

        // The command line of an older Corral: no slot and no id on any device, QEMU placing them; its vm.json without slots.
        var legacy = QemuCommandLine.Build(spec, paths, "tcg")
            .Select(a => System.Text.RegularExpressions.Regex.Replace(a, ",id=(vbd|vif)[0-9]+|,addr=0x[0-9a-f]+", ""))
            .ToList();
        await File.WriteAllTextAsync(paths.Spec, JsonSerializer.Serialize(spec));
        await CommandRunner.RunCheckedAsync("qemu-system-x86_64", legacy, CancellationToken.None);
        var process = (QemuVmProcess)Assert.Single(await rig.NewHypervisor().AdoptRunningAsync(CancellationToken.None));
        Assert.Equal(new int?[] { 4, 5 }, process.Spec.Disks.Select(d => d.PciSlot));
        await QemuRig.WaitForConsoleAsync(paths.ConsoleLog, VmLifecycleTests.Ready, VmLifecycleTests.BootTimeout);
        Assert.Equal(["vda", "vdb"], await GuestShell.RunAsync(process, paths.ConsoleLog, Disks, GuestTimeout));

        // Its anonymous disk is found by its slot and goes; the slot is the next one used.
        Assert.True(await process.DetachDiskAsync(1, GuestTimeout, CancellationToken.None));
        Assert.Equal(["vda"], await GuestShell.WaitForAsync(process, paths.ConsoleLog, Disks, d => d.Count == 1, GuestTimeout));
        Assert.False(OpenBy(process.ProcessId, extra));
        Assert.Equal(5, (await process.AttachDiskAsync(new DiskSpec(2, extra, "qcow2", false, false, false), CancellationToken.None)).PciSlot);
        await process.KillAsync(CancellationToken.None);
        await process.DisposeAsync();
    }

    [QemuFact]
    public async Task What_the_emulated_device_model_cannot_take_is_refused_and_nothing_changes()
    {
        await using var rig = new QemuRig(output);
        var hypervisor = rig.NewHypervisor();
        var image = await NewImageAsync(rig, "a.qcow2");
        var emulated = (QemuVmProcess)await hypervisor.StartAsync(rig.Spec(false, [new DiskSpec(0, image, "qcow2", false, false, true)]), CancellationToken.None);
        var other = await NewImageAsync(rig, "b.qcow2");
        var ide = await Assert.ThrowsAsync<DeviceHotplugException>(() => emulated.AttachDiskAsync(new DiskSpec(1, other, "qcow2", false, false, false), CancellationToken.None));
        Assert.Contains("IDE", ide.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<DeviceHotplugException>(() => emulated.DetachDiskAsync(0, TimeSpan.FromSeconds(1), CancellationToken.None));
        Assert.Single(emulated.Spec.Disks);
        Assert.False(OpenBy(emulated.ProcessId, other));

        var paravirtual = (QemuVmProcess)await hypervisor.StartAsync(rig.Spec(true, [new DiskSpec(0, other, "qcow2", false, false, true)]), CancellationToken.None);
        await Assert.ThrowsAsync<DeviceHotplugException>(() => paravirtual.AttachDiskAsync(new DiskSpec(3, null, "raw", true, true, false), CancellationToken.None));
        // A tap that does not exist is QEMU's to refuse; the card is not left half-added.
        await Assert.ThrowsAsync<DeviceHotplugException>(() => paravirtual.AttachNicAsync(new NicSpec(0, "no/such/tap", "02:00:00:aa:bb:03"), CancellationToken.None));
        Assert.Empty(paravirtual.Spec.Nics);
        await emulated.KillAsync(CancellationToken.None);
        await paravirtual.KillAsync(CancellationToken.None);
        await emulated.DisposeAsync();
        await paravirtual.DisposeAsync();
    }

    private static async Task<string> NewImageAsync(QemuRig rig, string name)
    {
        var path = Path.Combine(rig.Root, name);
        await CommandRunner.RunCheckedAsync("qemu-img", ["create", "-q", "-f", "qcow2", path, "64M"], CancellationToken.None);
        return path;
    }

    /// <summary>Whether the process holds the file open (a file descriptor in /proc/pid/fd points at it).</summary>
    private static bool OpenBy(int pid, string path) =>
        new DirectoryInfo($"/proc/{pid}/fd").EnumerateFileSystemInfos().Any(fd => fd.LinkTarget == path);

    /// <summary>Specs are records with list members: equal when their values are.</summary>
    private sealed class SpecComparer : IEqualityComparer<VmLaunchSpec>
    {
        public bool Equals(VmLaunchSpec? x, VmLaunchSpec? y) =>
            x is not null && y is not null && x.VmUuid == y.VmUuid && x.Disks.SequenceEqual(y.Disks) && x.Nics.SequenceEqual(y.Nics);

        public int GetHashCode(VmLaunchSpec obj) => obj.VmUuid.GetHashCode(StringComparison.Ordinal);
    }

    /// <summary>A tap of this test's own (a random name), deleted by name when the test ends.</summary>
    private sealed class Tap : IAsyncDisposable
    {
        private Tap(string name) => Name = name;

        public string Name { get; }

        public static async Task<Tap> CreateAsync()
        {
            var name = "cqt" + Guid.NewGuid().ToString("N")[..8];
            await CommandRunner.RunCheckedAsync("ip", ["tuntap", "add", "dev", name, "mode", "tap"], CancellationToken.None);
            return new Tap(name);
        }

        public async ValueTask DisposeAsync() => await CommandRunner.RunAsync("ip", ["link", "del", Name], CancellationToken.None);
    }
}
