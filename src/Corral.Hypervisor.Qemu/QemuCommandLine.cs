using System.Globalization;

namespace Corral.Hypervisor.Qemu;

/// <summary>The files of one VM's runtime directory.</summary>
public sealed record VmRuntimePaths(string Directory)
{
    public string Qmp => Path.Combine(Directory, "qmp.sock");

    public string Console => Path.Combine(Directory, "console.sock");

    public string ConsoleLog => Path.Combine(Directory, "console.log");

    public string GuestAgent => Path.Combine(Directory, "guest-agent.sock");

    public string Vnc => Path.Combine(Directory, "vnc.sock");

    public string PidFile => Path.Combine(Directory, "qemu.pid");

    public string Spec => Path.Combine(Directory, "vm.json");
}

/// <summary>Builds QEMU's arguments for a VM. Pure, so it is tested without starting QEMU.</summary>
public static class QemuCommandLine
{
    public const string GuestAgentPortName = "org.corral.guest_agent.0";

    public static IReadOnlyList<string> Build(VmLaunchSpec spec, VmRuntimePaths paths, string accelerator)
    {
        var a = new List<string>
        {
            "-name", $"{Escape(spec.Name)},process=corral-{spec.VmUuid[..8]}",
            "-uuid", spec.VmUuid,
            // i440fx has the PIIX IDE controller that guests without virtio drivers boot from.
            "-machine", "pc",
            "-accel", accelerator,
            "-cpu", accelerator == "kvm" ? "host" : "max",
            "-m", (spec.MemoryBytes / (1024 * 1024)).ToString(CultureInfo.InvariantCulture),
            "-smp", spec.Vcpus.ToString(CultureInfo.InvariantCulture),
            "-nodefaults",
            "-display", "none",
            "-vga", "std",
            "-vnc", $"unix:{paths.Vnc}",
            "-qmp", $"unix:{paths.Qmp},server=on,wait=off",
            "-chardev", $"socket,id=ser0,path={paths.Console},server=on,wait=off,logfile={paths.ConsoleLog},logappend=on",
            "-serial", "chardev:ser0",
            "-pidfile", paths.PidFile,
            "-daemonize",
        };

        if (spec.Paravirtual)
        {
            a.AddRange(
            [
                "-device", "virtio-serial-pci,id=vser0",
                "-chardev", $"socket,id=ga0,path={paths.GuestAgent},server=on,wait=off",
                "-device", $"virtserialport,chardev=ga0,name={GuestAgentPortName}",
            ]);
        }

        var ideSlot = 0;
        foreach (var disk in spec.Disks)
        {
            var id = $"drive{disk.Index}";
            var drive = $"if=none,id={id}";
            if (disk.IsCdrom)
            {
                drive += ",media=cdrom";
            }

            if (disk.Path is not null)
            {
                drive += $",file={Escape(disk.Path)},format={disk.Format}";
                drive += disk.IsCdrom ? "" : ",cache=writeback,discard=unmap";
                if (disk.ReadOnly)
                {
                    drive += ",readonly=on";
                }
            }

            a.AddRange(["-drive", drive]);
            var boot = disk.Bootable ? $",bootindex={disk.Index}" : "";
            if (disk.IsCdrom || !spec.Paravirtual)
            {
                if (ideSlot >= 4)
                {
                    throw new VmStartException("the emulated IDE controller takes at most 4 disks and CD drives");
                }

                var kind = disk.IsCdrom ? "ide-cd" : "ide-hd";
                a.AddRange(["-device", $"{kind},drive={id},bus=ide.{ideSlot / 2},unit={ideSlot % 2}{boot}"]);
                ideSlot++;
            }
            else
            {
                a.AddRange(["-device", $"virtio-blk-pci,drive={id}{boot}"]);
            }
        }

        foreach (var nic in spec.Nics)
        {
            var model = spec.Paravirtual ? "virtio-net-pci" : "e1000";
            a.AddRange(
            [
                "-netdev", $"tap,id=net{nic.Index},ifname={nic.TapName},script=no,downscript=no",
                "-device", $"{model},netdev=net{nic.Index},mac={nic.Mac}",
            ]);
        }

        foreach (var (key, value) in spec.FirmwareConfig.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            a.AddRange(["-fw_cfg", $"name=opt/corral/{Escape(key)},string={Escape(value)}"]);
        }

        if (spec.IncomingMigration is not null)
        {
            a.AddRange(["-incoming", spec.IncomingMigration]);
        }

        return a;
    }

    /// <summary>QEMU option values treat a comma as a separator; a literal comma is written twice.</summary>
    public static string Escape(string value) => value.Replace(",", ",,", StringComparison.Ordinal);
}
