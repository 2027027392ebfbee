using Corral.EndToEndTests.Screens;
using Corral.Hypervisor.Qemu.Tests.Infrastructure;
using Corral.Platform;
using Xunit.Abstractions;

namespace Corral.Hypervisor.Qemu.Tests;

/// <summary>
/// The project's installer ISO booting in a VM with an empty disk, watched through the VM's graphical console (QEMU's
/// VNC socket, what the web console relays to noVNC) with the tests' RFB viewer: what the viewer reads is what QEMU
/// itself draws (its <c>screendump</c> over the VM's spare QMP monitor), the installer's text screen, while the serial
/// console says the installer runs. InstallFromMediaLabTests does the same through the web console's websocket.
/// </summary>
[Collection(QemuVmCollection.Name)]
public sealed class InstallerScreenTests(ITestOutputHelper output)
{
    private const string Started = "corral-installer: Corral installer 1.0";
    private const string Done = "CORRAL-INSTALL-DONE";

    [GuestImageFact]
    public async Task A_viewer_of_the_vms_screen_sees_the_installer_as_qemu_draws_it()
    {
        await using var rig = new QemuRig(output);
        var iso = Path.Combine(await GuestImages.EnsureAsync(), "corral-installer.iso");
        Assert.True(File.Exists(iso), $"{iso}: built by guest/build-image.sh");
        var disk = Path.Combine(rig.Root, "empty.qcow2");
        await CommandRunner.RunCheckedAsync("qemu-img", ["create", "-q", "-f", "qcow2", disk, "1G"], CancellationToken.None);
        // As "Other install media" makes it: emulated devices, the CD first in the boot order.
        var spec = rig.Spec(false, [new DiskSpec(0, disk, "qcow2", false, false, true, BootIndex: 2), new DiskSpec(3, iso, "raw", true, true, true, BootIndex: 1)]);
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await using var process = (QemuVmProcess)await rig.NewHypervisor().StartAsync(spec, timeout.Token);
        var paths = QemuRig.PathsOf(rig, spec.VmUuid);

        await using var viewer = await RfbClient.ConnectAsync(await process.OpenConsoleAsync(VmConsoleKind.Graphical, timeout.Token), timeout.Token);
        Assert.Contains(spec.Name, viewer.Name, StringComparison.Ordinal);
        var early = await viewer.ReadScreenAsync(timeout.Token);
        output.WriteLine($"first frame: {early}");

        await QemuRig.WaitForConsoleAsync(paths.ConsoleLog, Started, VmLifecycleTests.BootTimeout);
        var match = await ScreenWatch.MatchAsync(viewer, paths.Monitor, async () =>
        {
            var log = await File.ReadAllTextAsync(paths.ConsoleLog, timeout.Token);
            return log.Contains(Started, StringComparison.Ordinal) && !log.Contains(Done, StringComparison.Ordinal);
        }, TimeSpan.FromMinutes(2), timeout.Token);
        output.WriteLine($"viewer {match.Viewer}, QEMU {match.Qemu}, {match.Difference:P3} differ");

        // The installer's screen is the VGA text console: 80x25 characters of 9x16 pixels.
        Assert.Equal((720, 400), (match.Viewer.Width, match.Viewer.Height));
        // The installer's lines came after the firmware's first screen, and the viewer shows them.
        Assert.NotEqual(0, match.Viewer.DifferenceFrom(early));
        await process.KillAsync(CancellationToken.None);
    }
}
