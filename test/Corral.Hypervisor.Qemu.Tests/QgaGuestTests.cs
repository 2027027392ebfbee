using System.Text.Json.Nodes;
using Corral.Hypervisor.Qemu.GuestAgent;
using Corral.Hypervisor.Qemu.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Corral.Hypervisor.Qemu.Tests;

/// <summary>
/// The test image runs Debian's QEMU guest agent on its standard port: a real VM under TCG answers the standard
/// commands through <see cref="QgaClient"/> and powers itself off on <c>guest-shutdown</c>, as a Debian or Ubuntu guest
/// with <c>qemu-guest-agent</c> installed does.
/// </summary>
[Collection(QemuVmCollection.Name)]
public sealed class QgaGuestTests(ITestOutputHelper output)
{
    [GuestImageFact]
    public async Task A_guest_with_qemu_ga_reports_itself_its_addresses_file_systems_and_users_reboots_and_shuts_down_on_request()
    {
        await using var rig = new QemuRig(output);
        var hypervisor = rig.NewHypervisor();
        var spec = await rig.GuestSpecAsync(paravirtual: true, new Dictionary<string, string> { ["vm-data/hostname"] = "qga" });
        await using var process = (QemuVmProcess)await hypervisor.StartAsync(spec, CancellationToken.None);
        var paths = QemuRig.PathsOf(rig, spec.VmUuid);
        Assert.True(File.Exists(paths.Qga), "QEMU serves the guest agent's port");
        await QemuRig.WaitForConsoleAsync(paths.ConsoleLog, VmLifecycleTests.Ready, VmLifecycleTests.BootTimeout);

        // The process's own connection (QEMU takes one client on the port): its first report, then questions over it.
        await QemuRig.WaitUntilAsync(() => process.LatestGuestReport is not null, TimeSpan.FromSeconds(60), "a report from qemu-ga");
        var tools = process.Qga;
        var info = await tools.AskAsync(QgaQueries.InfoAsync, default);
        Assert.Equal(info.Version, process.LatestGuestReport!.AgentVersion);

        // The image carries this machine's qemu-ga, from Debian's package.
        using (var version = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("qemu-ga", "-V") { RedirectStandardOutput = true })!)
        {
            Assert.Contains($"QEMU Guest Agent {info.Version}", await version.StandardOutput.ReadToEndAsync(), StringComparison.Ordinal);
        }

        Assert.True(info.Has("guest-shutdown"));
        var os = await tools.AskAsync(QgaQueries.OsInfoAsync, default);
        Assert.Equal("corral-linux-test", os.Id);
        Assert.Equal("Corral Linux test 1.0", os.PrettyName);
        Assert.Matches(@"^\d+\.\d+", os.KernelRelease);
        Assert.Equal("Corral Linux test 1.0", process.LatestGuestReport.OsVersion["name"]);
        Assert.Equal("1", process.LatestGuestReport.OsVersion["major"]);

        // Its uptime, read from the guest's /proc/uptime: a few seconds after a boot that took a few seconds.
        var uptime = process.LatestGuestReport.Uptime;
        Assert.InRange(uptime, TimeSpan.FromSeconds(0.5), TimeSpan.FromMinutes(2));
        Assert.InRange((await tools.AskAsync((c, ct) => QgaQueries.UptimeAsync(c, info, ct), default))!.Value, uptime, uptime + TimeSpan.FromMinutes(1));

        // The guest's virtio drivers, as QEMU sees them set up.
        Assert.Equal("1", process.LatestGuestReport.PvDrivers["virtio_blk"]);
        Assert.Equal("1", process.LatestGuestReport.PvDrivers["virtio_console"]);

        // This VM has no card (the lab's VMs do): the loopback, which no card's MAC names.
        var interfaces = await tools.AskAsync(QgaQueries.InterfacesAsync, default);
        Assert.Contains(new QgaAddress("ipv4", "127.0.0.1", 8), Assert.Single(interfaces, i => i.Name == "lo").Addresses);
        Assert.Empty(process.LatestGuestReport.Networks);

        var data = Assert.Single(await tools.AskAsync(QgaQueries.FileSystemsAsync, default), f => f.MountPoint == "/data");
        Assert.Equal("ext4", data.Type);
        Assert.True(data.TotalBytes > 0);

        // The report carries them as the guest metrics show them: the guest's device name, size and free space.
        var volume = Assert.Single(process.LatestGuestReport.Volumes!, v => v.MountPoint == "/data");
        Assert.Equal(new GuestVolume("/data", "ext4", "vda2", data.TotalBytes, data.TotalBytes - data.UsedBytes), volume);
        Assert.InRange(volume.FreeBytes!.Value, 1, volume.SizeBytes!.Value);

        // Nobody logged in (the console's shell is no login): none. Then a login record as login(1) writes it, in
        // glibc's utmp layout (USER_PROCESS, pid 1, pts/9, user corral-tester, logged in at 0x65000000 s), and the
        // next report names the user and the login's time.
        Assert.Empty(process.LatestGuestReport.Users!);
        // (Short: the shell's line editing slows down with every wrapped line typed.)
        var utmp = @"{ printf '\7\0\0\0\1\0\0\0pts/9';head -c27 /dev/zero;printf ts/9corral-tester;head -c283 /dev/zero;printf '\0\0\0e';"
            + "head -c40 /dev/zero;}>/var/run/utmp;wc -c</var/run/utmp";
        Assert.Equal(["384"], await GuestShell.RunAsync(process, paths.ConsoleLog, utmp, TimeSpan.FromSeconds(30)));
        await QemuRig.WaitUntilAsync(() => process.LatestGuestReport.Users is [_, ..], TimeSpan.FromSeconds(30), "the logged-in user in a report");
        Assert.Equal(new GuestUser("corral-tester", new DateTime(2023, 9, 12, 6, 6, 56, DateTimeKind.Utc)), Assert.Single(process.LatestGuestReport.Users!));

        // The agent stops in the guest (a crashed or removed tools service): once past its freshness (10 s) the process
        // says so, once; started again, it reports again.
        var events = new EventRecorder(process);
        await GuestShell.RunAsync(process, paths.ConsoleLog, "kill $(pidof qemu-ga)", TimeSpan.FromSeconds(30));
        await events.WaitForAsync(VmProcessEventKind.GuestAgentSilent, TimeSpan.FromSeconds(40));
        Assert.False(process.GuestAgentResponsive);
        var reports = events.Count(VmProcessEventKind.GuestReport);
        await GuestShell.RunAsync(process, paths.ConsoleLog,
            "/sbin/qemu-ga -d -m virtio-serial -p /dev/$(basename $(grep -l org.qemu.guest_agent.0 /sys/class/virtio-ports/*/name | xargs dirname)) -t /run -f /run/qemu-ga.pid -l /run/qemu-ga.log",
            TimeSpan.FromSeconds(30));
        await events.WaitForAsync(VmProcessEventKind.GuestReport, TimeSpan.FromSeconds(40), reports + 1);
        Assert.True(process.GuestAgentResponsive);
        Assert.Equal(1, events.Count(VmProcessEventKind.GuestAgentSilent));

        // A reboot inside the same process, then the agent answers again and powers the guest off.
        Assert.True(await tools.ShutdownAsync("reboot", TimeSpan.FromSeconds(10), default));
        await QemuRig.WaitForConsoleAsync(paths.ConsoleLog, VmLifecycleTests.Ready, VmLifecycleTests.BootTimeout, occurrences: 2);
        Assert.False(process.Exited.IsCompleted);
        await QemuRig.WaitUntilAsync(() => tools.IsResponsive(TimeSpan.FromSeconds(2)), TimeSpan.FromSeconds(60), "qemu-ga answering after the reboot");
        Assert.True(await tools.ShutdownAsync("powerdown", TimeSpan.FromSeconds(10), default));
        await process.Exited.WaitAsync(VmLifecycleTests.ShutdownTimeout);
        Assert.Contains("corral-guest: poweroff", await File.ReadAllTextAsync(paths.ConsoleLog), StringComparison.Ordinal);
        Assert.True(process.ExitIntended, "a guest that powers itself off stays halted (QMP SHUTDOWN, guest-shutdown)");
    }
}
