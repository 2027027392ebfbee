using System.Diagnostics;
using System.Text.Json.Nodes;
using Corral.Hypervisor.Qemu.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Corral.Hypervisor.Qemu.Tests;

/// <summary>Real VMs under TCG, booted from overlays of the project's guest images.</summary>
[Collection(QemuVmCollection.Name)]
public sealed class VmLifecycleTests(ITestOutputHelper output)
{
    public const string Ready = "CORRAL-GUEST-READY";
    public static readonly TimeSpan BootTimeout = TimeSpan.FromMinutes(3);
    public static readonly TimeSpan ShutdownTimeout = TimeSpan.FromMinutes(1);

    [GuestImageFact]
    public async Task A_paravirtual_guest_boots_reports_pauses_resumes_and_shuts_down_through_its_agent()
    {
        await using var rig = new QemuRig(output);
        var hypervisor = rig.NewHypervisor();
        var spec = await rig.GuestSpecAsync(paravirtual: true, new Dictionary<string, string> { ["vm-data/hostname"] = "qtest" });

        var clock = Stopwatch.StartNew();
        var process = (QemuVmProcess)await hypervisor.StartAsync(spec, CancellationToken.None);
        var started = clock.Elapsed.TotalSeconds;
        var events = new EventRecorder(process);
        var paths = QemuRig.PathsOf(rig, spec.VmUuid);
        foreach (var file in new[] { paths.Qmp, paths.Console, paths.Qga, paths.Vnc, paths.PidFile, paths.Spec })
        {
            Assert.True(File.Exists(file), $"{file} exists");
        }

        Assert.True(VmProcessTable.IsRunningVm(process.ProcessId, spec.VmUuid));
        Assert.Equal(process.ProcessId, VmProcessTable.ReadPidFile(paths.PidFile));

        await QemuRig.WaitForConsoleAsync(paths.ConsoleLog, Ready, BootTimeout);
        var booted = clock.Elapsed.TotalSeconds;
        await events.WaitForAsync(VmProcessEventKind.GuestReport, TimeSpan.FromSeconds(60));
        var reported = clock.Elapsed.TotalSeconds;
        output.WriteLine($"MEASURED paravirtual: StartAsync {started:F2} s, {Ready} {booted:F2} s, first guest report {reported:F2} s after start");

        var report = process.LatestGuestReport!;
        Assert.Matches(@"^\d+\.\d+\.\d+$", report.AgentVersion); // Debian's qemu-ga, as the guest tools
        Assert.Equal("1", report.PvDrivers["virtio_blk"]);
        Assert.Equal("Corral Linux test 1.0", report.OsVersion["name"]);
        Assert.True(report.Uptime > TimeSpan.Zero);
        Assert.Equal(VmRunState.Running, await process.QueryStateAsync(CancellationToken.None));

        await process.PauseAsync(CancellationToken.None);
        Assert.Equal(VmRunState.Paused, await process.QueryStateAsync(CancellationToken.None));
        await events.WaitForAsync(VmProcessEventKind.Stopped, TimeSpan.FromSeconds(10));
        // A report whose answers all came before the pause may still land just after it (seen in CI): let it, then count.
        await Task.Delay(TimeSpan.FromSeconds(1));
        var reportsWhilePaused = events.Count(VmProcessEventKind.GuestReport);
        await Task.Delay(TimeSpan.FromSeconds(5)); // the host asks the agent every 3 s; a paused guest cannot answer
        Assert.Equal(reportsWhilePaused, events.Count(VmProcessEventKind.GuestReport));

        await process.ResumeAsync(CancellationToken.None);
        Assert.Equal(VmRunState.Running, await process.QueryStateAsync(CancellationToken.None));
        await events.WaitForAsync(VmProcessEventKind.Resumed, TimeSpan.FromSeconds(10));
        await events.WaitForAsync(VmProcessEventKind.GuestReport, TimeSpan.FromSeconds(30), reportsWhilePaused + 1);
        Assert.True(process.GuestAgentResponsive);

        clock.Restart();
        await process.RequestShutdownAsync(CancellationToken.None);
        await process.Exited.WaitAsync(ShutdownTimeout);
        output.WriteLine($"MEASURED paravirtual: agent shutdown to process gone {clock.Elapsed.TotalSeconds:F2} s");

        // The guest agent did it: no ACPI power button press, a guest-initiated poweroff, and the process is gone.
        Assert.Equal(0, events.CountQmp("POWERDOWN"));
        Assert.Equal(1, events.Count(VmProcessEventKind.GuestShutdown));
        Assert.Equal(1, events.Count(VmProcessEventKind.Exited));
        Assert.Contains("corral-guest: poweroff", await File.ReadAllTextAsync(paths.ConsoleLog), StringComparison.Ordinal);
        Assert.False(VmProcessTable.IsRunningVm(process.ProcessId, spec.VmUuid));
        // What a natural exit leaves: the console log, for whoever asks why the VM stopped; no sockets, pidfile or spec.
        Assert.Equal([paths.ConsoleLog], Directory.GetFiles(paths.Directory));
        await process.DisposeAsync();
    }

    [GuestImageFact]
    public async Task A_guest_without_tools_boots_from_ide_resets_and_powers_off_on_the_acpi_button()
    {
        await using var rig = new QemuRig(output);
        var hypervisor = rig.NewHypervisor();
        var spec = await rig.GuestSpecAsync(paravirtual: false);

        var clock = Stopwatch.StartNew();
        await using var process = (QemuVmProcess)await hypervisor.StartAsync(spec, CancellationToken.None);
        var events = new EventRecorder(process);
        var paths = QemuRig.PathsOf(rig, spec.VmUuid);
        Assert.True(File.Exists(paths.Qga)); // every VM has the agent's port; this guest has no agent on it

        await QemuRig.WaitForConsoleAsync(paths.ConsoleLog, Ready, BootTimeout);
        output.WriteLine($"MEASURED emulated: {Ready} {clock.Elapsed.TotalSeconds:F2} s after start");

        // No agent: a reboot request is a hard reset, and the guest boots again inside the same process.
        await process.RequestRebootAsync(CancellationToken.None);
        await events.WaitForAsync(VmProcessEventKind.GuestReset, TimeSpan.FromSeconds(10));
        await QemuRig.WaitForConsoleAsync(paths.ConsoleLog, Ready, BootTimeout, occurrences: 2);
        Assert.True(VmProcessTable.IsRunningVm(process.ProcessId, spec.VmUuid));
        Assert.Null(process.LatestGuestReport);

        // The power button handler in the guest needs a moment after boot to open its input device.
        await Task.Delay(TimeSpan.FromSeconds(2));
        clock.Restart();
        await process.RequestShutdownAsync(CancellationToken.None);
        await process.Exited.WaitAsync(ShutdownTimeout);
        output.WriteLine($"MEASURED emulated: ACPI shutdown to process gone {clock.Elapsed.TotalSeconds:F2} s");
        Assert.Equal(1, events.CountQmp("POWERDOWN"));
        Assert.Contains("corral-guest: poweroff", await File.ReadAllTextAsync(paths.ConsoleLog), StringComparison.Ordinal);
        Assert.False(VmProcessTable.IsRunningVm(process.ProcessId, spec.VmUuid));
    }

    [GuestImageFact]
    public async Task The_guest_agent_reboots_the_guest_inside_the_same_process()
    {
        await using var rig = new QemuRig(output);
        var hypervisor = rig.NewHypervisor();
        var spec = await rig.GuestSpecAsync(paravirtual: true);
        await using var process = (QemuVmProcess)await hypervisor.StartAsync(spec, CancellationToken.None);
        var events = new EventRecorder(process);
        var paths = QemuRig.PathsOf(rig, spec.VmUuid);
        await QemuRig.WaitForConsoleAsync(paths.ConsoleLog, Ready, BootTimeout);
        await events.WaitForAsync(VmProcessEventKind.GuestReport, TimeSpan.FromSeconds(60));

        var requested = DateTime.UtcNow;
        await process.RequestRebootAsync(CancellationToken.None);
        await QemuRig.WaitForConsoleAsync(paths.ConsoleLog, Ready, BootTimeout, occurrences: 2);
        Assert.Contains("corral-guest: reboot", await File.ReadAllTextAsync(paths.ConsoleLog), StringComparison.Ordinal);
        Assert.Equal(0, events.CountQmp("POWERDOWN"));
        Assert.True(events.CountQmp("RESET") >= 1);

        // The agent comes back after the reboot, over the same host socket: a report whose uptime is shorter than the time
        // since the reboot was asked for can only come from the new boot.
        await QemuRig.WaitUntilAsync(
            () => process.LatestGuestReport is { } r && r.ReceivedUtc > requested && r.Uptime < r.ReceivedUtc - requested,
            TimeSpan.FromSeconds(60), "a report from the rebooted guest");
        Assert.True(VmProcessTable.IsRunningVm(process.ProcessId, spec.VmUuid));
        await process.KillAsync(CancellationToken.None);
    }

    [GuestImageFact]
    public async Task Kill_stops_a_running_guest_at_once_and_removes_its_runtime_directory()
    {
        await using var rig = new QemuRig(output);
        var hypervisor = rig.NewHypervisor();
        var spec = await rig.GuestSpecAsync(paravirtual: true);
        await using var process = (QemuVmProcess)await hypervisor.StartAsync(spec, CancellationToken.None);
        var paths = QemuRig.PathsOf(rig, spec.VmUuid);
        await QemuRig.WaitForConsoleAsync(paths.ConsoleLog, Ready, BootTimeout);
        await process.PauseAsync(CancellationToken.None); // a paused VM is killed just the same

        var clock = Stopwatch.StartNew();
        await process.KillAsync(CancellationToken.None);
        output.WriteLine($"MEASURED kill: {clock.Elapsed.TotalSeconds:F2} s");
        Assert.True(process.Exited.IsCompleted);
        Assert.False(VmProcessTable.IsRunningVm(process.ProcessId, spec.VmUuid));
        Assert.False(Directory.Exists(paths.Directory));
        Assert.Empty(rig.LiveQemus());
    }

    [GuestImageFact]
    public async Task A_cd_drive_takes_and_gives_up_media_while_the_guest_runs()
    {
        await using var rig = new QemuRig(output);
        var hypervisor = rig.NewHypervisor();
        var disk = await rig.OverlayAsync(GuestImages.TestImageName);
        var iso = Path.Combine(rig.Root, "tools.iso");
        await File.WriteAllBytesAsync(iso, new byte[2048 * 64]);
        var spec = rig.Spec(true, [new DiskSpec(0, disk, "qcow2", false, false, true), new DiskSpec(3, null, "raw", true, true, false)]);
        await using var process = (QemuVmProcess)await hypervisor.StartAsync(spec, CancellationToken.None);

        async Task<JsonObject?> MediumAsync()
        {
            var blocks = (JsonArray)(await process.Qmp.ExecuteAsync("query-block", null, CancellationToken.None))!;
            var drive = blocks.Single(b => b!["device"]!.GetValue<string>() == "drive3")!;
            return drive["inserted"] as JsonObject;
        }

        Assert.Null(await MediumAsync());
        await process.ChangeMediumAsync(3, iso, CancellationToken.None);
        var inserted = await MediumAsync();
        Assert.Equal(iso, inserted!["file"]!.GetValue<string>());
        Assert.True(inserted["ro"]!.GetValue<bool>());

        await process.ChangeMediumAsync(3, null, CancellationToken.None);
        Assert.Null(await MediumAsync());

        await Assert.ThrowsAsync<ArgumentException>(() => process.ChangeMediumAsync(0, iso, CancellationToken.None));
        var missing = await Assert.ThrowsAsync<QmpException>(() => process.ChangeMediumAsync(3, Path.Combine(rig.Root, "missing.iso"), CancellationToken.None));
        Assert.Contains("missing.iso", missing.Description, StringComparison.Ordinal);
        await process.KillAsync(CancellationToken.None);
    }
}

/// <summary>Starts that must fail, and fail cleanly; and starts that must not happen twice.</summary>
[Collection(QemuVmCollection.Name)]
public sealed class VmStartTests(ITestOutputHelper output)
{
    [QemuFact]
    public async Task Qemus_own_complaint_comes_back_and_nothing_is_left_behind()
    {
        await using var rig = new QemuRig(output);
        var hypervisor = rig.NewHypervisor();
        var spec = rig.Spec(true, [new DiskSpec(0, Path.Combine(rig.Root, "no-such-disk.qcow2"), "qcow2", false, false, true)]);
        var error = await Assert.ThrowsAsync<VmStartException>(() => hypervisor.StartAsync(spec, CancellationToken.None));
        output.WriteLine(error.Message);
        Assert.Contains("no-such-disk.qcow2", error.Message, StringComparison.Ordinal);
        Assert.Contains("No such file", error.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(QemuRig.PathsOf(rig, spec.VmUuid).Directory));
        Assert.Empty(rig.LiveQemus());

        var badOption = rig.NewHypervisor(o => o.ExtraArgs.Add("-no-such-option"));
        var second = rig.Spec(true, []);
        error = await Assert.ThrowsAsync<VmStartException>(() => badOption.StartAsync(second, CancellationToken.None));
        Assert.Contains("-no-such-option", error.Message, StringComparison.Ordinal);
        Assert.Empty(rig.LiveQemus());
    }

    [QemuFact]
    public async Task A_vm_already_running_is_never_started_a_second_time()
    {
        await using var rig = new QemuRig(output);
        var hypervisor = rig.NewHypervisor();
        // No disk at all: the firmware finds nothing to boot, which is all this test needs of a guest.
        var spec = rig.Spec(true, []);
        await using var process = await hypervisor.StartAsync(spec, CancellationToken.None);

        var again = await Assert.ThrowsAsync<VmStartException>(() => hypervisor.StartAsync(spec, CancellationToken.None));
        Assert.Contains("already runs", again.Message, StringComparison.Ordinal);

        // Nor by another agent instance that has not adopted it.
        var other = rig.NewHypervisor();
        var fromOther = await Assert.ThrowsAsync<VmStartException>(() => other.StartAsync(spec, CancellationToken.None));
        Assert.Contains("adopt it", fromOther.Message, StringComparison.Ordinal);
        Assert.Single(rig.LiveQemus());
        Assert.True(VmProcessTable.IsRunningVm(process.ProcessId, spec.VmUuid));
        await process.KillAsync(CancellationToken.None);
        Assert.Empty(rig.LiveQemus());
    }

    [QemuFact]
    public async Task An_incoming_migration_target_starts_paused_waiting_for_its_stream()
    {
        await using var rig = new QemuRig(output);
        var hypervisor = rig.NewHypervisor();
        var spec = rig.Spec(true, [], incoming: "defer");
        await using var process = await hypervisor.StartAsync(spec, CancellationToken.None);
        Assert.Equal(VmRunState.Paused, await process.QueryStateAsync(CancellationToken.None));
        var status = await ((QemuVmProcess)process).Qmp.ExecuteAsync("query-status", null, CancellationToken.None);
        Assert.Equal("inmigrate", status!["status"]!.GetValue<string>());
        await process.KillAsync(CancellationToken.None);
        Assert.Empty(rig.LiveQemus());
    }
}
