using System.Diagnostics;
using System.Globalization;
using Corral.Hypervisor.Qemu.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Corral.Hypervisor.Qemu.Tests;

/// <summary>An agent that goes away leaves its VMs running; the next one adopts them, never starts or kills a second copy.</summary>
[Collection(QemuVmCollection.Name)]
public sealed class AdoptionTests(ITestOutputHelper output)
{
    [GuestImageFact]
    public async Task A_new_agent_adopts_the_running_guest_and_drives_it()
    {
        await using var rig = new QemuRig(output);
        var spec = await rig.GuestSpecAsync(paravirtual: true);
        var paths = QemuRig.PathsOf(rig, spec.VmUuid);

        var first = rig.NewHypervisor();
        var original = (QemuVmProcess)await first.StartAsync(spec, CancellationToken.None);
        var pid = original.ProcessId;
        await QemuRig.WaitForConsoleAsync(paths.ConsoleLog, VmLifecycleTests.Ready, VmLifecycleTests.BootTimeout);
        await QemuRig.WaitUntilAsync(() => original.LatestGuestReport is not null, TimeSpan.FromSeconds(60), "guest report to the first agent");

        // The agent dies: its hypervisor lets go of everything. QEMU must not notice.
        await first.DisposeAsync();
        Assert.True(VmProcessTable.IsRunningVm(pid, spec.VmUuid));
        Assert.False(original.Exited.IsCompleted);
        await Task.Delay(TimeSpan.FromSeconds(2));
        Assert.True(VmProcessTable.IsRunningVm(pid, spec.VmUuid));

        var second = rig.NewHypervisor();
        var clock = Stopwatch.StartNew();
        var adopted = await second.AdoptRunningAsync(CancellationToken.None);
        output.WriteLine($"MEASURED adoption: {clock.Elapsed.TotalMilliseconds:F0} ms");
        var process = Assert.IsType<QemuVmProcess>(Assert.Single(adopted));
        var events = new EventRecorder(process);
        Assert.Equal(spec.VmUuid, process.VmUuid);
        Assert.Equal(pid, process.ProcessId);
        Assert.Equal(spec.Name, process.Spec.Name);
        // As started: every PCI device at the slot it was given then.
        Assert.Equal(PciLayout.Assign(spec).Disks, process.Spec.Disks);
        Assert.Equal(4, Assert.Single(process.Spec.Disks).PciSlot);
        Assert.Equal(VmRunState.Running, await process.QueryStateAsync(CancellationToken.None));

        // The guest agents' ports are picked up again too: the QEMU guest agent answers the adopting agent.
        await events.WaitForAsync(VmProcessEventKind.GuestReport, TimeSpan.FromSeconds(30));
        await QemuRig.WaitUntilAsync(() => process.Qga.IsResponsive(TimeSpan.FromSeconds(10)), TimeSpan.FromSeconds(30), "the QEMU guest agent answering after adoption");
        Assert.Matches(@"^\d+\.\d+\.\d+$", process.LatestGuestReport!.AgentVersion);

        await process.PauseAsync(CancellationToken.None);
        Assert.Equal(VmRunState.Paused, await process.QueryStateAsync(CancellationToken.None));
        await process.ResumeAsync(CancellationToken.None);
        Assert.Equal(VmRunState.Running, await process.QueryStateAsync(CancellationToken.None));

        // Adopting again finds nothing new, and starting it again is refused: one QEMU per VM, always.
        Assert.Empty(await second.AdoptRunningAsync(CancellationToken.None));
        await Assert.ThrowsAsync<VmStartException>(() => second.StartAsync(spec, CancellationToken.None));
        Assert.Equal([(pid, spec.VmUuid)], rig.LiveQemus());

        await process.KillAsync(CancellationToken.None);
        Assert.False(VmProcessTable.IsRunningVm(pid, spec.VmUuid));
        Assert.False(Directory.Exists(paths.Directory));
        await process.DisposeAsync();
    }

    [QemuFact]
    public async Task Adoption_clears_what_dead_processes_left_and_leaves_foreign_directories_alone()
    {
        await using var rig = new QemuRig(output);
        var hypervisor = rig.NewHypervisor();

        // A VM that ran and died while no agent watched it: its directory names a pid that is not (or no longer) its QEMU.
        var dead = new VmRuntimePaths(Path.Combine(rig.RuntimeDirectory, Guid.NewGuid().ToString()));
        Directory.CreateDirectory(dead.Directory);
        await File.WriteAllTextAsync(dead.PidFile, Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        await File.WriteAllTextAsync(dead.Spec, "{}");
        var foreign = Path.Combine(rig.RuntimeDirectory, "not-a-vm");
        Directory.CreateDirectory(foreign);

        // And one live VM, started by an agent that then went away.
        var starter = rig.NewHypervisor();
        var spec = rig.Spec(false, []);
        var live = await starter.StartAsync(spec, CancellationToken.None);
        await starter.DisposeAsync();

        var adopted = await hypervisor.AdoptRunningAsync(CancellationToken.None);
        Assert.Equal(spec.VmUuid, Assert.Single(adopted).VmUuid);
        Assert.False(Directory.Exists(dead.Directory));
        Assert.True(Directory.Exists(foreign));
        Assert.True(VmProcessTable.IsRunningVm(live.ProcessId, spec.VmUuid));
        await adopted[0].KillAsync(CancellationToken.None);
        Assert.Empty(rig.LiveQemus());
    }
}

/// <summary>KVM or TCG, decided by a real boot and remembered.</summary>
[Collection(QemuVmCollection.Name)]
public sealed class AcceleratorTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Configuration_can_force_the_choice_but_only_to_kvm_or_tcg()
    {
        await using var rig = new QemuRig(output);
        var forced = await rig.NewHypervisor(o => o.ForceAccelerator = "tcg").GetAcceleratorAsync(CancellationToken.None);
        Assert.Equal("tcg", forced.Name);
        Assert.Contains("configuration", forced.Reason, StringComparison.Ordinal);
        await Assert.ThrowsAsync<InvalidOperationException>(() => rig.NewHypervisor(o => o.ForceAccelerator = "xen").GetAcceleratorAsync(CancellationToken.None));
    }

    [Fact]
    public async Task Without_a_probe_image_kvm_is_not_trusted()
    {
        await using var rig = new QemuRig(output);
        var choice = await rig.NewHypervisor(o => o.ForceAccelerator = null).GetAcceleratorAsync(CancellationToken.None);
        Assert.Equal("tcg", choice.Name);
        Assert.True(choice.Reason.Contains("probe image", StringComparison.Ordinal) || choice.Reason.Contains("/dev/kvm", StringComparison.Ordinal), choice.Reason);

        var missing = await rig.NewHypervisor(o => (o.ForceAccelerator, o.ProbeImagePath) = (null, "/nonexistent/probe.qcow2"))
            .GetAcceleratorAsync(CancellationToken.None);
        Assert.Equal("tcg", missing.Name);
    }

    [GuestImageFact]
    public async Task The_probe_boots_the_image_remembers_its_verdict_and_vms_run_under_it()
    {
        if (!File.Exists("/dev/kvm"))
        {
            output.WriteLine("/dev/kvm does not exist here: the probe is not run, TCG is chosen without it");
        }

        await using var rig = new QemuRig(output);
        var image = Path.Combine(rig.Root, "probe.qcow2");
        File.Copy(Path.Combine(await GuestImages.EnsureAsync(), GuestImages.TestImageName), image);
        void Probe(QemuOptions o) => (o.ForceAccelerator, o.ProbeImagePath, o.ProbeTimeout) = (null, image, TimeSpan.FromSeconds(20));

        var clock = Stopwatch.StartNew();
        var hypervisor = rig.NewHypervisor(Probe);
        var choice = await hypervisor.GetAcceleratorAsync(CancellationToken.None);
        output.WriteLine($"MEASURED probe: {choice.Name} in {clock.Elapsed.TotalSeconds:F2} s: {choice.Reason}");
        Assert.Contains(choice.Name, new[] { "kvm", "tcg" });
        Assert.DoesNotContain("remembered", choice.Reason, StringComparison.Ordinal);
        Assert.Same(choice, await hypervisor.GetAcceleratorAsync(CancellationToken.None));

        if (File.Exists("/dev/kvm"))
        {
            // A second agent on the same host reads the verdict instead of probing again...
            var remembered = await rig.NewHypervisor(Probe).GetAcceleratorAsync(CancellationToken.None);
            Assert.Equal(choice.Name, remembered.Name);
            Assert.Contains("remembered", remembered.Reason, StringComparison.Ordinal);
            Assert.True(File.Exists(Path.Combine(rig.StateDirectory, "accelerator.json")));

            // ...until the probe image changes.
            File.SetLastWriteTimeUtc(image, DateTime.UtcNow.AddMinutes(1));
            var reprobed = await rig.NewHypervisor(Probe).GetAcceleratorAsync(CancellationToken.None);
            Assert.DoesNotContain("remembered", reprobed.Reason, StringComparison.Ordinal);
        }

        // Whatever was chosen boots a guest.
        var spec = await rig.GuestSpecAsync(paravirtual: true);
        await using var process = await hypervisor.StartAsync(spec, CancellationToken.None);
        var accel = await ((QemuVmProcess)process).Qmp.ExecuteAsync("query-kvm", null, CancellationToken.None);
        Assert.Equal(choice.Name == "kvm", accel!["enabled"]!.GetValue<bool>());
        await QemuRig.WaitForConsoleAsync(QemuRig.PathsOf(rig, spec.VmUuid).ConsoleLog, VmLifecycleTests.Ready, VmLifecycleTests.BootTimeout);
        await process.KillAsync(CancellationToken.None);
        Assert.Empty(rig.LiveQemus());
    }
}
