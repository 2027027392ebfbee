using Corral.EndToEndTests.Screens;
using Xunit;

namespace Corral.EndToEndTests;

/// <summary>
/// Installing guests from an ISO as a new user would, with xe, on the shared lab: the project's installer ISO (built
/// from Debian packages by guest/build-image.sh) dropped into the ISO library and found by a scan; a VM made from
/// "Other install media" on the shared SR (no home server) with a disk, the CD and a network card; started, it
/// installs onto its disk (its screen watched through the web console as noVNC shows it, and matched with QEMU's own
/// picture of it), reboots into the installed system, reports its tools and address, the CD is ejected and it shuts
/// down cleanly. Then the same from the Debian 12 template, whose disk vm-install provisions and which boots
/// UEFI with Secure Boot on (the template's secureboot=auto, made true at start as xapi does): Debian's signed shim, GRUB
/// and kernel on the ISO and on the installed disk; its variable store is kept with the VM. That one installs from an
/// ISO library on the storage server's NFS export (<c>location=server:/path</c>), which the test adds with sr-create.
/// </summary>
[Collection(SharedLabCollection.Name)]
public sealed class InstallFromMediaLabTests(SharedLab shared)
{
    private const string Iso = "corral-installer.iso";
    private const string NfsIso = "corral-installer-nfs.iso";
    private readonly SharedLab _shared = shared;
    private readonly LabSession _lab = shared.Lab;
    private readonly List<string> _installed = [];
    private string? _nfsLibrary;

    [Fact]
    public async Task An_installer_iso_installs_a_guest_that_boots_from_its_own_disk_with_its_tools()
    {
        try
        {
            await InstallBothAsync();
        }
        finally
        {
            foreach (var vm in _installed)
            {
                await _shared.RemoveAsync(vm);
            }

            if (_nfsLibrary is not null)
            {
                foreach (var pbd in (await _lab.Xe("pbd-list", $"sr-uuid={_nfsLibrary}", "--minimal")).Split(',', StringSplitOptions.RemoveEmptyEntries))
                {
                    await _lab.Xe("pbd-unplug", $"uuid={pbd}");
                }

                await _lab.Xe("sr-forget", $"uuid={_nfsLibrary}");
            }
        }
    }

    private async Task InstallBothAsync()
    {
        var sharedSr = await _lab.Xe("sr-list", "name-label=Shared storage", "--minimal");
        var library = await _lab.Xe("sr-list", "name-label=ISO library", "--minimal");
        var network = await _lab.Xe("network-list", "bridge=xenbr1", "--minimal"); // the lab's VM network
        var subnet = await _shared.VmSubnetAsync();

        // The administrator drops the ISO into the library (the shared lab's: an SMB share of its storage server) and scans it.
        File.Copy(Path.Combine(LabSession.Repo, "guest", "build", Iso), Path.Combine(_lab.IsoLibraryDirectory, Iso), overwrite: true);
        await _lab.Xe("sr-scan", $"uuid={library}");
        Assert.Contains(Iso, await _lab.Xe("cd-list"), StringComparison.Ordinal);

        var bios = await _lab.Xe("vm-install", "template=Other install media", "new-name-label=installed-bios", $"sr-uuid={sharedSr}");
        _installed.Add(bios);
        await _lab.Xe("vm-disk-add", $"uuid={bios}", "disk-size=1GiB", "device=0", $"sr-uuid={sharedSr}");
        await InstallAndCheckAsync(bios, network, $"{subnet}.41", Iso, watchScreen: true);

        // An ISO library on an NFS share (server:/path, as XenServer's), added with sr-create: nothing is mounted on the
        // hosts; its images are read over NFS by QEMU itself. The UEFI guest installs from it.
        var nfsIsos = Directory.CreateDirectory(Path.Combine(_lab.LabDirectory, "storage", "nfs", "isos")).FullName;
        File.Copy(Path.Combine(LabSession.Repo, "guest", "build", Iso), Path.Combine(nfsIsos, NfsIso), overwrite: true);
        var host1 = await _lab.Xe("host-list", "name-label=lab-host1", "--minimal");
        _nfsLibrary = await _lab.Xe("sr-create", $"host-uuid={host1}", "name-label=ISO library on NFS", "type=iso", "content-type=iso", "shared=true",
            $"device-config:location={_lab.StorageAddress}:/srv/vms/isos");
        Assert.Contains(NfsIso, await _lab.Xe("cd-list"), StringComparison.Ordinal);
        Assert.Equal("true,true,true", await _lab.Xe("pbd-list", $"sr-uuid={_nfsLibrary}", "params=currently-attached", "--minimal"));

        // Debian 12: vm-install provisions its 10 GiB disk on the SR; it boots UEFI, and its variables stay with it.
        var uefi = await _lab.Xe("vm-install", "template=Debian Bookworm 12", "new-name-label=installed-uefi", $"sr-uuid={sharedSr}");
        _installed.Add(uefi);
        var disk = await _lab.Xe("vbd-param-get", $"uuid={await _lab.Xe("vbd-list", $"vm-uuid={uefi}", "userdevice=0", "--minimal")}", "param-name=vdi-uuid");
        Assert.Equal("10737418240", await _lab.Xe("vdi-param-get", $"uuid={disk}", "param-name=virtual-size"));
        Assert.Contains("firmware: uefi", await _lab.Xe("vm-param-get", $"uuid={uefi}", "param-name=HVM-boot-params"), StringComparison.Ordinal);
        Assert.Equal("auto", await _lab.Xe("vm-param-get", $"uuid={uefi}", "param-name=platform", "param-key=secureboot"));
        var console = await InstallAndCheckAsync(uefi, network, $"{subnet}.42", NfsIso);
        Assert.Equal("true", await _lab.Xe("vm-param-get", $"uuid={uefi}", "param-name=platform", "param-key=secureboot"));
        Assert.Contains("Welcome to GRUB!", console, StringComparison.Ordinal); // the firmware let shim run, and shim Debian's GRUB
        Assert.StartsWith("EFI-variables: ", await _lab.Xe("vm-param-get", $"uuid={uefi}", "param-name=NVRAM"), StringComparison.Ordinal);
    }

    /// <summary>
    /// The installer's screen through the web console's websocket, as a browser on lab-host1's page sees it: while the
    /// serial console says the installer runs, the viewer's frame is QEMU's own picture of the VM's screen (taken on the
    /// VM's host through its spare QMP monitor), the VGA text console.
    /// </summary>
    private async Task WatchTheInstallerInTheWebConsoleAsync(string vm)
    {
        const string started = "corral-installer: Corral installer 1.0";
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await using var viewer = await WebConsoleScreen.OpenAsync(_lab.Addresses[0], "corral", vm, timeout.Token);
        string? File(string name) => Directory.GetFiles(_lab.RunDirectory, name, SearchOption.AllDirectories).SingleOrDefault(f => f.Contains(vm, StringComparison.Ordinal));
        async Task<string> LogAsync() => File("console.log") is { } log ? await System.IO.File.ReadAllTextAsync(log, timeout.Token) : "";
        await LabSession.Eventually(async () => (await LogAsync()).Contains(started, StringComparison.Ordinal), TimeSpan.FromMinutes(3),
            $"VM {vm}'s installer to start");
        var match = await ScreenWatch.MatchAsync(viewer, File("monitor.sock")!, async () =>
        {
            var log = await LogAsync();
            return log.Contains(started, StringComparison.Ordinal) && !log.Contains("CORRAL-INSTALL-DONE", StringComparison.Ordinal);
        }, TimeSpan.FromMinutes(2), timeout.Token);
        Assert.Equal((720, 400), (match.Viewer.Width, match.Viewer.Height));
    }

    /// <summary>
    /// CD in, a card on the network, start; the installer's work ends in the installed system reporting its tools.
    /// Returns the VM's serial console log, read before it shut down.
    /// </summary>
    private async Task<string> InstallAndCheckAsync(string vm, string network, string ip, string iso, bool watchScreen = false)
    {
        await _lab.Xe("vm-cd-add", $"uuid={vm}", $"cd-name={iso}", "device=3");
        await _lab.Xe("vif-create", $"vm-uuid={vm}", $"network-uuid={network}", "device=0", "mac=random");
        await _lab.Xe("vm-param-set", $"uuid={vm}", $"xenstore-data:vm-data/ip={ip}/24");
        await _lab.Xe("vm-start", $"uuid={vm}");
        if (watchScreen)
        {
            await WatchTheInstallerInTheWebConsoleAsync(vm);
        }

        // The installed system runs Debian's QEMU guest agent: tools, address and OS come from it, from its own disk.
        await LabSession.Eventually(async () => (await _lab.TryXe("vm-param-get", $"uuid={vm}", "param-name=networks")).Output.Contains(ip, StringComparison.Ordinal),
            TimeSpan.FromMinutes(4), $"VM {vm} to install, reboot from its disk and report {ip}");
        Assert.Contains("major: 7", await _lab.Xe("vm-param-get", $"uuid={vm}", "param-name=PV-drivers-version"), StringComparison.Ordinal);
        Assert.Contains("Corral Linux test", await _lab.Xe("vm-param-get", $"uuid={vm}", "param-name=os-version"), StringComparison.Ordinal);
        // Its file systems and logged-in users (nobody: its console's shell is no login) in other, under xapi-style keys.
        var other = await _lab.Xe("vm-param-get", $"uuid={vm}", "param-name=other");
        Assert.Matches(@"data-volume-\d+-mount-point: /data(;|$)", other);
        Assert.Contains("data-users: 0", other, StringComparison.Ordinal);
        Assert.Equal("", await _lab.Xe("vm-param-get", $"uuid={vm}", "param-name=disks"));
        await LabSession.Eventually(() => LabSession.Ping(ip), TimeSpan.FromSeconds(30), $"{ip} to answer ping");
        var console = await File.ReadAllTextAsync(Directory.GetFiles(_lab.RunDirectory, "console.log", SearchOption.AllDirectories)
            .Single(f => f.Contains(vm, StringComparison.Ordinal)));
        Assert.Contains("corral-installer: CORRAL-INSTALL-DONE", console, StringComparison.Ordinal);

        // The administrator ejects the CD, and the VM shuts down cleanly through its tools.
        await _lab.Xe("vm-cd-eject", $"uuid={vm}");
        Assert.Equal("true", await _lab.Xe("vbd-list", $"vm-uuid={vm}", "type=CD", "params=empty", "--minimal"));
        await _lab.Xe("vm-shutdown", $"uuid={vm}");
        Assert.Equal("halted", await _lab.Xe("vm-param-get", $"uuid={vm}", "param-name=power-state"));
        return console;
    }
}
