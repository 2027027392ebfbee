using System.Globalization;
using System.Text.Json;
using Corral.Hypervisor.Qemu.Tests.Infrastructure;
using Corral.Platform;
using Xunit.Abstractions;

namespace Corral.Hypervisor.Qemu.Tests;

/// <summary>
/// Live resize seen from inside a real guest: vCPUs plugged in (brought online by Debian's QEMU guest agent) and taken
/// out, across a live migration whose destination starts with the count the guest has then; the balloon taking memory
/// from the guest and giving it back (its MemTotal); disks, from the command line and plugged later, growing under it.
/// </summary>
[Collection(QemuVmCollection.Name)]
public sealed class LiveResizeTests(ITestOutputHelper output)
{
    private static readonly TimeSpan GuestTimeout = TimeSpan.FromSeconds(90);
    private const string Cpus = "grep -c ^processor /proc/cpuinfo";
    private const string MemTotalKiB = "awk '/^MemTotal:/ {print $2}' /proc/meminfo";

    [GuestImageFact]
    public async Task A_guest_takes_vcpus_and_gives_them_back_and_keeps_them_when_it_moves()
    {
        await using var rig = new QemuRig(output);
        var source = rig.NewHypervisor();
        var destination = rig.NewHypervisor(o => o.RuntimeDirectory = Path.Combine(rig.Root, "vms-dest"));
        var spec = await rig.GuestSpecAsync(paravirtual: true) with { Vcpus = 1, MaxVcpus = 3, Balloon = true };
        var sender = (QemuVmProcess)await source.StartAsync(spec, CancellationToken.None);
        var log = QemuRig.PathsOf(rig, spec.VmUuid).ConsoleLog;
        await QemuRig.WaitForConsoleAsync(log, VmLifecycleTests.Ready, VmLifecycleTests.BootTimeout);
        Assert.Equal(["1"], await GuestShell.RunAsync(sender, log, Cpus, GuestTimeout));
        await QemuRig.WaitUntilAsync(() => Task.FromResult(sender.GuestAgentResponsive), "the QEMU guest agent", GuestTimeout);

        Assert.Equal(2, await sender.SetVcpusAsync(2, GuestTimeout, CancellationToken.None));
        Assert.Equal(["2"], await GuestShell.WaitForAsync(sender, log, Cpus, c => c.SequenceEqual(["2"]), GuestTimeout));
        Assert.Equal(["0-1"], await GuestShell.RunAsync(sender, log, "cat /sys/devices/system/cpu/online", GuestTimeout));
        if (await IsKvmAsync(sender))
        {
            // Under KVM a vCPU goes back out (the guest takes it offline and ejects it).
            Assert.Equal(3, await sender.SetVcpusAsync(3, GuestTimeout, CancellationToken.None));
            Assert.Equal(2, await sender.SetVcpusAsync(2, GuestTimeout, CancellationToken.None));
            Assert.Equal(["2"], await GuestShell.WaitForAsync(sender, log, Cpus, c => c.SequenceEqual(["2"]), GuestTimeout));
        }
        else
        {
            // Under TCG QEMU 7.2 could not migrate the VM afterwards: refused, the guest keeps its vCPUs.
            await Assert.ThrowsAsync<DeviceHotplugException>(() => sender.SetVcpusAsync(1, GuestTimeout, CancellationToken.None));
            Assert.Equal(["2"], await GuestShell.RunAsync(sender, log, Cpus, GuestTimeout));
        }

        await Assert.ThrowsAsync<DeviceHotplugException>(() => sender.SetVcpusAsync(4, GuestTimeout, CancellationToken.None));
        await Assert.ThrowsAsync<DeviceHotplugException>(() => sender.SetVcpusAsync(0, GuestTimeout, CancellationToken.None));
        // What an agent adopting the process, and the migration's destination, read: the count the guest has now.
        var saved = JsonSerializer.Deserialize<VmLaunchSpec>(await File.ReadAllTextAsync(QemuRig.PathsOf(rig, spec.VmUuid).Spec))!;
        Assert.Equal((2, 3, 1), (saved.Vcpus, saved.MaxVcpus, saved.DiskQueues));

        // The destination starts with -smp 2,maxcpus=3 (its disk with the source's one queue): the guest's two vCPUs are
        // where the source has them.
        var port = QemuRig.FreePort();
        var receiver = (QemuVmProcess)await destination.StartAsync(sender.Spec with { IncomingMigration = $"tcp:127.0.0.1:{port}" }, CancellationToken.None);
        await sender.StartMigrationAsync($"tcp:127.0.0.1:{port}", MigrationTuning.Default, CancellationToken.None);
        await QemuRig.WaitUntilAsync(async () => (await sender.QueryMigrationAsync(CancellationToken.None)).Status == MigrationStatus.PreSwitchover, "pre-switchover", GuestTimeout);
        await sender.ContinueMigrationAsync(CancellationToken.None);
        await QemuRig.WaitUntilAsync(async () => await receiver.QueryStateAsync(CancellationToken.None) == VmRunState.Running, "the destination to run the guest", GuestTimeout);
        var migration = await sender.QueryMigrationAsync(CancellationToken.None);
        Assert.True(migration.Status == MigrationStatus.Completed, migration.Error);
        await sender.KillAsync(CancellationToken.None);
        await sender.DisposeAsync();

        var destinationLog = new VmRuntimePaths(Path.Combine(rig.Root, "vms-dest", spec.VmUuid)).ConsoleLog;
        Assert.Equal(["2"], await GuestShell.RunAsync(receiver, destinationLog, Cpus, GuestTimeout));
        await QemuRig.WaitUntilAsync(() => Task.FromResult(receiver.GuestAgentResponsive), "the QEMU guest agent over there", GuestTimeout);
        Assert.Equal(3, await receiver.SetVcpusAsync(3, GuestTimeout, CancellationToken.None));
        Assert.Equal(["3"], await GuestShell.WaitForAsync(receiver, destinationLog, Cpus, c => c.SequenceEqual(["3"]), GuestTimeout));
        await receiver.KillAsync(CancellationToken.None);
        await receiver.DisposeAsync();
    }

    [GuestImageFact]
    public async Task The_balloon_takes_memory_from_the_guest_and_gives_it_back()
    {
        await using var rig = new QemuRig(output);
        var spec = await rig.GuestSpecAsync(paravirtual: true) with { Balloon = true };
        var process = (QemuVmProcess)await rig.NewHypervisor().StartAsync(spec, CancellationToken.None);
        var log = QemuRig.PathsOf(rig, spec.VmUuid).ConsoleLog;
        await QemuRig.WaitForConsoleAsync(log, VmLifecycleTests.Ready, VmLifecycleTests.BootTimeout);
        var full = KiB(await GuestShell.RunAsync(process, log, MemTotalKiB, GuestTimeout));
        // All its RAM (QEMU's, which may be 8 KiB short of the figure asked: QemuCommandLine.MemoryArgument).
        var ram = (await process.QueryMemoryActualAsync(CancellationToken.None))!.Value;
        Assert.InRange(ram, spec.MemoryBytes - (8 << 10), spec.MemoryBytes);

        // 96 MiB out of 256: MemTotal drops by what the balloon holds.
        await process.SetMemoryTargetAsync(160L << 20, CancellationToken.None);
        await QemuRig.WaitUntilAsync(async () => await process.QueryMemoryActualAsync(CancellationToken.None) == 160L << 20, "the balloon to inflate", GuestTimeout);
        var ballooned = KiB(await GuestShell.WaitForAsync(process, log, MemTotalKiB, m => KiB(m) < full - (90 << 10), GuestTimeout));
        Assert.InRange(full - ballooned, 90 << 10, 100 << 10);

        await process.SetMemoryTargetAsync(spec.MemoryBytes, CancellationToken.None);
        await QemuRig.WaitUntilAsync(async () => await process.QueryMemoryActualAsync(CancellationToken.None) == ram, "the balloon to deflate", GuestTimeout);
        Assert.Equal(full, KiB(await GuestShell.WaitForAsync(process, log, MemTotalKiB, m => KiB(m) == full, GuestTimeout)));
        await Assert.ThrowsAsync<DeviceHotplugException>(() => process.SetMemoryTargetAsync(4096, CancellationToken.None));
        await process.KillAsync(CancellationToken.None);
        await process.DisposeAsync();
    }

    [GuestImageFact]
    public async Task Disks_grow_under_a_running_guest_and_never_shrink()
    {
        await using var rig = new QemuRig(output);
        var fromStart = await NewImageAsync(rig, "start.qcow2");
        var spec = await rig.GuestSpecAsync(paravirtual: true);
        // A VM started without a balloon (as by an older Corral) has no memory to set.
        Assert.False(spec.Balloon);
        spec = spec with { Disks = [.. spec.Disks, new DiskSpec(1, fromStart, "qcow2", false, false, false)] };
        var process = (QemuVmProcess)await rig.NewHypervisor().StartAsync(spec, CancellationToken.None);
        var log = QemuRig.PathsOf(rig, spec.VmUuid).ConsoleLog;
        await QemuRig.WaitForConsoleAsync(log, VmLifecycleTests.Ready, VmLifecycleTests.BootTimeout);
        await Assert.ThrowsAsync<DeviceHotplugException>(() => process.SetMemoryTargetAsync(128L << 20, CancellationToken.None));
        Assert.Null(await process.QueryMemoryActualAsync(CancellationToken.None));
        Assert.Equal(["131072"], await GuestShell.RunAsync(process, log, "cat /sys/block/vdb/size", GuestTimeout));

        // From the command line (a named drive): 64 MiB to 100 MiB and a bit, rounded up to a whole sector.
        Assert.Equal(100L << 20, await process.ResizeDiskAsync(1, (100L << 20) - 100, CancellationToken.None));
        Assert.Equal(["204800"], await GuestShell.WaitForAsync(process, log, "cat /sys/block/vdb/size", s => s.SequenceEqual(["204800"]), GuestTimeout));
        Assert.Equal(100L << 20, await VirtualSizeAsync(fromStart));
        await Assert.ThrowsAsync<DeviceHotplugException>(() => process.ResizeDiskAsync(1, 64L << 20, CancellationToken.None));
        Assert.Equal(["204800"], await GuestShell.RunAsync(process, log, "cat /sys/block/vdb/size", GuestTimeout));

        // Plugged later (a block node of its own).
        var plugged = await NewImageAsync(rig, "plugged.qcow2");
        await process.AttachDiskAsync(new DiskSpec(2, plugged, "qcow2", false, false, false), CancellationToken.None);
        Assert.Equal(["131072"], await GuestShell.WaitForAsync(process, log, "cat /sys/block/vdc/size 2>/dev/null", s => s.SequenceEqual(["131072"]), GuestTimeout));
        Assert.Equal(1L << 30, await process.ResizeDiskAsync(2, 1L << 30, CancellationToken.None));
        Assert.Equal(["2097152"], await GuestShell.WaitForAsync(process, log, "cat /sys/block/vdc/size", s => s.SequenceEqual(["2097152"]), GuestTimeout));
        await Assert.ThrowsAsync<DeviceHotplugException>(() => process.ResizeDiskAsync(7, 1L << 30, CancellationToken.None));
        await process.KillAsync(CancellationToken.None);
        await process.DisposeAsync();
    }

    private static async Task<bool> IsKvmAsync(QemuVmProcess process) =>
        (await process.Qmp.ExecuteAsync("query-kvm", null, CancellationToken.None))?["enabled"]?.GetValue<bool>() == true;

    private static long KiB(IReadOnlyList<string> words) => long.Parse(Assert.Single(words), CultureInfo.InvariantCulture);

    private static async Task<string> NewImageAsync(QemuRig rig, string name)
    {
        var path = Path.Combine(rig.Root, name);
        await CommandRunner.RunCheckedAsync("qemu-img", ["create", "-q", "-f", "qcow2", path, "64M"], CancellationToken.None);
        return path;
    }

    private static async Task<long> VirtualSizeAsync(string image)
    {
        var info = await CommandRunner.RunCheckedAsync("qemu-img", ["info", "-U", "--output=json", image], CancellationToken.None);
        return JsonDocument.Parse(info).RootElement.GetProperty("virtual-size").GetInt64();
    }
}
