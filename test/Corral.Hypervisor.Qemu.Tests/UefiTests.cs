using Corral.Hypervisor.Qemu.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Corral.Hypervisor.Qemu.Tests;

/// <summary>
/// A VM booting UEFI firmware (Debian's OVMF) from the project's test image, whose boot partition carries an EFI boot
/// loader beside the BIOS one: its variable store written by the firmware, left as the VM left it when it stops, and
/// taken back at its next start.
/// </summary>
[Collection(QemuVmCollection.Name)]
public sealed class UefiTests(ITestOutputHelper output)
{
    private const string OvmfVars = "/usr/share/OVMF/OVMF_VARS_4M.fd";
    private const string OvmfSecureBootVars = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd";

    [GuestImageFact]
    public async Task A_uefi_guest_boots_and_its_variable_store_is_kept_across_starts()
    {
        Assert.True(File.Exists(OvmfVars), "Debian's ovmf is installed (run-tests installs it)");
        var empty = await File.ReadAllBytesAsync(OvmfVars);
        await using var rig = new QemuRig(output);
        var hypervisor = rig.NewHypervisor();
        var spec = await rig.GuestSpecAsync(paravirtual: true) with { Uefi = new UefiSpec(null) };

        var process = (QemuVmProcess)await hypervisor.StartAsync(spec, CancellationToken.None);
        var events = new EventRecorder(process);
        var paths = QemuRig.PathsOf(rig, spec.VmUuid);
        Assert.Equal(empty.Length, new FileInfo(paths.Nvram).Length);
        await QemuRig.WaitForConsoleAsync(paths.ConsoleLog, VmLifecycleTests.Ready, VmLifecycleTests.BootTimeout);
        var running = await process.ReadNvramAsync(CancellationToken.None);
        Assert.NotNull(running);
        // Booted all the way: its guest agent answers (and takes the shutdown below).
        await events.WaitForAsync(VmProcessEventKind.GuestReport, TimeSpan.FromSeconds(60));

        await process.RequestShutdownAsync(CancellationToken.None);
        await process.Exited.WaitAsync(VmLifecycleTests.ShutdownTimeout);
        var left = await process.ReadNvramAsync(CancellationToken.None);
        await process.DisposeAsync();
        Assert.NotNull(left);
        Assert.Equal(empty.Length, left.Length);
        // The firmware recorded its boot options: the store is no longer the empty one it started from.
        Assert.False(left.AsSpan().SequenceEqual(empty), "OVMF wrote its variables");
        Assert.False(File.Exists(paths.Nvram), "the runtime copy goes with the process; the VM's store is what it left");

        // The next start takes the store back, and boots with it.
        var again = spec with { Uefi = new UefiSpec(left) };
        await using var second = (QemuVmProcess)await hypervisor.StartAsync(again, CancellationToken.None);
        Assert.Equal(left, await File.ReadAllBytesAsync(paths.Nvram));
        await QemuRig.WaitForConsoleAsync(paths.ConsoleLog, VmLifecycleTests.Ready, VmLifecycleTests.BootTimeout);
        await second.KillAsync(CancellationToken.None);

        // A store that does not fit this host's firmware is refused before QEMU runs.
        await Assert.ThrowsAsync<VmStartException>(() => hypervisor.StartAsync(spec with { Uefi = new UefiSpec(new byte[4096]) }, CancellationToken.None));
    }

    [GuestImageFact]
    public async Task A_secure_boot_guest_starts_from_the_enrolled_store_and_boots_debians_signed_chain_with_secure_boot_on()
    {
        var enrolled = await File.ReadAllBytesAsync(OvmfSecureBootVars);
        await using var rig = new QemuRig(output);
        var hypervisor = rig.NewHypervisor();
        var spec = await rig.GuestSpecAsync(paravirtual: true) with { Uefi = new UefiSpec(null, SecureBoot: true) };

        await using var process = (QemuVmProcess)await hypervisor.StartAsync(spec, CancellationToken.None);
        var paths = QemuRig.PathsOf(rig, spec.VmUuid);
        Assert.Equal(enrolled, await File.ReadAllBytesAsync(paths.Nvram));
        await QemuRig.WaitForConsoleAsync(paths.ConsoleLog, VmLifecycleTests.Ready, VmLifecycleTests.BootTimeout);

        // The firmware verified shim (Microsoft's key), shim GRUB and GRUB the kernel (Debian's), and told the kernel
        // Secure Boot is on: it locks itself down, as on a real machine.
        // (Counted, not printed: the console's long lines come back broken.)
        Assert.Equal(["2"], await GuestShell.RunAsync(process, paths.ConsoleLog,
            "dmesg | grep -c -e 'secureboot: Secure boot enabled' -e 'Kernel is locked down from EFI Secure Boot'", TimeSpan.FromSeconds(60)));
        await process.KillAsync(CancellationToken.None);

        // Without Secure Boot the same image boots with it off.
        var plain = spec with { VmUuid = Guid.NewGuid().ToString(), Uefi = new UefiSpec(null) };
        await using var second = (QemuVmProcess)await hypervisor.StartAsync(plain, CancellationToken.None);
        var plainPaths = QemuRig.PathsOf(rig, plain.VmUuid);
        await QemuRig.WaitForConsoleAsync(plainPaths.ConsoleLog, VmLifecycleTests.Ready, VmLifecycleTests.BootTimeout);
        Assert.Equal(["0"], await GuestShell.RunAsync(second, plainPaths.ConsoleLog,
            "dmesg | grep -c -e 'secureboot: Secure boot enabled' -e 'Kernel is locked down'", TimeSpan.FromSeconds(60)));
        await second.KillAsync(CancellationToken.None);
    }
}
