using Corral.Hypervisor;
using Corral.Hypervisor.Qemu;
using Xunit;

namespace Corral.UnitTests;

public class QemuCommandLineTests
{
    private static VmLaunchSpec Spec(bool paravirtual) => new(
        "6f1c2a3b-0000-4000-8000-000000000001", "web, 1", 256L << 20, 2, paravirtual,
        [new DiskSpec(0, "/sr/a.qcow2", "qcow2", false, false, true), new DiskSpec(3, null, "raw", true, true, false)],
        [new NicSpec(0, "vif5.0", "02:00:00:00:00:01")],
        new Dictionary<string, string> { ["vm-data/ip"] = "10.0.0.5/24" });

    [Fact]
    public void Paravirtual_guests_get_virtio_devices_and_the_qemu_guest_agent_port()
    {
        var args = string.Join(' ', QemuCommandLine.Build(Spec(true), new VmRuntimePaths("/run/vm"), "tcg"));
        Assert.Contains("virtio-blk-pci,drive=drive0,id=vbd0,addr=0x4,num-queues=2,bootindex=0", args, StringComparison.Ordinal);
        Assert.Contains("virtio-net-pci,netdev=net0,mac=02:00:00:00:00:01,id=vif0,addr=0x5", args, StringComparison.Ordinal);
        Assert.Contains("name=org.qemu.guest_agent.0", args, StringComparison.Ordinal);
        Assert.DoesNotContain("org.corral.guest_agent.0", args, StringComparison.Ordinal);
        Assert.Contains("ide-cd,drive=drive3", args, StringComparison.Ordinal);
        Assert.Contains("-daemonize", args, StringComparison.Ordinal);
        Assert.Contains("name=opt/corral/vm-data/ip,string=10.0.0.5/24", args, StringComparison.Ordinal);
        Assert.Contains("-name web,, 1,process=", args, StringComparison.Ordinal);
    }

    [Fact]
    public void A_vm_with_a_vtpm_gets_swtpms_socket_behind_a_crb_interface_and_one_without_gets_none()
    {
        var paths = new VmRuntimePaths("/run/vm");
        var args = QemuCommandLine.Build(Spec(false) with { Tpm = new TpmSpec([1, 2, 3]) }, paths, "tcg");
        var at = args.ToList().IndexOf("-tpmdev");
        Assert.True(at > 0, string.Join(' ', args));
        Assert.Equal(["-chardev", "socket,id=chrtpm,path=/run/vm/tpm.sock", "-tpmdev", "emulator,id=tpm0,chardev=chrtpm", "-device", "tpm-crb,tpmdev=tpm0"],
            args.Skip(at - 2).Take(6));
        Assert.DoesNotContain(QemuCommandLine.Build(Spec(false), paths, "tcg"), a => a.Contains("tpm", StringComparison.Ordinal));
        // The state is the guest's secrets: never written to the runtime directory's vm.json.
        Assert.DoesNotContain("AQID", System.Text.Json.JsonSerializer.Serialize(Spec(false) with { Tpm = new TpmSpec([1, 2, 3]) }), StringComparison.Ordinal);
    }

    [Fact]
    public void Emulated_guests_get_ide_and_e1000_and_no_virtio_but_the_guest_agents_port()
    {
        var args = string.Join(' ', QemuCommandLine.Build(Spec(false), new VmRuntimePaths("/run/vm"), "tcg"));
        Assert.Contains("ide-hd,drive=drive0,bus=ide.0,unit=0", args, StringComparison.Ordinal);
        Assert.Contains("e1000,netdev=net0", args, StringComparison.Ordinal);
        Assert.DoesNotContain("virtio-blk", args, StringComparison.Ordinal);
        Assert.DoesNotContain("virtio-net", args, StringComparison.Ordinal);
        // The QEMU guest agent's port is every VM's (docs/guests.md): one virtio-serial device, its one port.
        Assert.Contains("virtio-serial-pci,id=vser0", args, StringComparison.Ordinal);
        Assert.Contains("virtserialport,chardev=qga0,name=org.qemu.guest_agent.0", args, StringComparison.Ordinal);
        Assert.DoesNotContain("org.corral.guest_agent.0", args, StringComparison.Ordinal);
    }

    [Fact]
    public void A_disk_on_an_iscsi_lun_behind_chap_gets_its_password_from_a_secret_file_never_from_the_command_line()
    {
        var paths = new VmRuntimePaths("/run/vm");
        var disk = new DiskSpec(1, "iscsi://corral%s3cret,pass@10.0.0.5:3260/iqn.2026-12.org.corral:sr/1#4194304+16777216", "raw", false, false, true);
        var args = QemuCommandLine.Build(Spec(true) with { Disks = [disk] }, paths, "tcg");
        var line = string.Join(' ', args);
        Assert.DoesNotContain("s3cret", line, StringComparison.Ordinal);
        Assert.Contains("secret,id=drive1-chap,file=/run/vm/drive1.chap", args);
        Assert.Contains("file.driver=iscsi,file.transport=tcp,file.portal=10.0.0.5:3260,file.target=iqn.2026-12.org.corral:sr,file.lun=1," +
                        "file.user=corral,file.password-secret=drive1-chap", line, StringComparison.Ordinal);
        Assert.DoesNotContain(QemuCommandLine.Build(Spec(true), paths, "tcg"), a => a.StartsWith("secret,", StringComparison.Ordinal));
    }
}
