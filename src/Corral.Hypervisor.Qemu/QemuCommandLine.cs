using System.Globalization;
using System.Text.RegularExpressions;

namespace Corral.Hypervisor.Qemu;

/// <summary>How the host page cache is used for a virtual disk (QEMU's <c>cache=</c>).</summary>
public enum DiskCacheMode
{
    /// <summary>Host page cache used; guest flushes become fsync. Safe for data, works on every file system.</summary>
    Writeback,

    /// <summary>O_DIRECT: no host page cache, so another host reading the same shared image sees what was written.</summary>
    None,
}

/// <summary>Builds QEMU's arguments for a VM. Pure, so it is tested without starting QEMU.</summary>
public static partial class QemuCommandLine
{
    /// <summary>QEMU's fw_cfg file names hold at most 55 characters (56 with the terminating NUL).</summary>
    public const int MaxFirmwareConfigName = 55;

    public const string FirmwareConfigPrefix = "opt/corral/";

    /// <summary>The PIIX IDE controller of the i440fx machine: two buses, master and slave on each.</summary>
    public const int IdeSlots = 4;

    /// <summary>The QEMU drive id (the BlockBackend name QMP commands take) for a VBD's userdevice.</summary>
    public static string DriveId(int diskIndex) => $"drive{diskIndex.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>The QEMU secret object holding the CHAP password of disk <paramref name="diskIndex"/>'s iSCSI LUN.</summary>
    public static string ChapSecretId(int diskIndex) => DriveId(diskIndex) + "-chap";

    /// <summary>The qdev id of a disk's device (what <c>device_del</c> names): <c>vbd&lt;index&gt;</c>.</summary>
    public static string DiskDeviceId(int diskIndex) => $"vbd{diskIndex.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>The qdev id of a network card's device: <c>vif&lt;index&gt;</c>.</summary>
    public static string NicDeviceId(int nicIndex) => $"vif{nicIndex.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>The id of a network card's backend (its tap): <c>net&lt;index&gt;</c>.</summary>
    public static string NetdevId(int nicIndex) => $"net{nicIndex.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>The network card QEMU emulates: virtio for a paravirtual guest, an Intel e1000 for one without drivers.</summary>
    public static string NicModel(bool paravirtual) => paravirtual ? "virtio-net-pci" : "e1000";

    /// <summary>The process name QEMU gives itself (Linux keeps 15 characters), so `ps -o comm` tells VMs apart.</summary>
    public static string ProcessName(string vmUuid) => "corral-" + vmUuid[..8];

    /// <summary>
    /// Whether this QEMU needs its guest's RAM sized off 256 KiB so that live migration keeps every guest write. Before
    /// 9.0, QEMU under TCG syncs the dirty bitmap of a RAM block whose size is a multiple of 256 KiB with a fast path that
    /// does not mark the vCPUs' TLB entries clean again: guest stores through those entries then go unrecorded, and a
    /// page sent earlier in the migration arrives without them (upstream: "physmem: Fix migration dirty bitmap coherency
    /// with TCG memory access", QEMU 9.0). Seen here as a guest whose page tables were corrupt after a live migration.
    /// A block of any other size is synced page by page, and each dirty page's TLB entries are reset. KVM tracks dirty
    /// pages in the kernel and is not affected.
    /// </summary>
    public static bool NeedsPageByPageDirtySync(string accelerator, Version qemuVersion) =>
        accelerator == "tcg" && qemuVersion < new Version(9, 0);

    /// <summary>
    /// QEMU's <c>-m</c> for a VM: whole mebibytes, or, when <see cref="NeedsPageByPageDirtySync"/>, 8 KiB less (QEMU
    /// rounds RAM up to 8 KiB, so the figure stands), which no 256 KiB multiple is. Source and destination of a
    /// migration compute it alike, so their RAM blocks match.
    /// </summary>
    public static string MemoryArgument(long memoryBytes, bool pageByPageDirtySync)
    {
        var megabytes = (memoryBytes + (1L << 20) - 1) >> 20;
        return pageByPageDirtySync
            ? (megabytes * 1024 - 8).ToString(CultureInfo.InvariantCulture) + "K"
            : megabytes.ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// The request queues of each virtio disk, given explicitly (QEMU's default is one per vCPU at start): the same on a
    /// migration's destination, whatever vCPUs it starts with.
    /// </summary>
    public static int DiskQueues(VmLaunchSpec spec) => spec.DiskQueues ?? spec.Vcpus;

    /// <summary>The qdev id of the memory balloon.</summary>
    public const string BalloonDeviceId = "balloon0";

    /// <summary>
    /// QEMU's <c>-smp</c>: the vCPUs the guest has now and, with room for more, the most it may have (QEMU then lays out
    /// one socket per possible vCPU, and the sockets past the first <see cref="VmLaunchSpec.Vcpus"/> are empty until
    /// a CPU is plugged in). A destination started with the source's current count gets the same sockets filled.
    /// </summary>
    public static string SmpArgument(VmLaunchSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var vcpus = spec.Vcpus.ToString(CultureInfo.InvariantCulture);
        return spec.MaxVcpus is { } max ? $"{vcpus},maxcpus={max.ToString(CultureInfo.InvariantCulture)}" : vcpus;
    }

    public static IReadOnlyList<string> Build(VmLaunchSpec spec, VmRuntimePaths paths, string accelerator,
        Func<DiskSpec, DiskCacheMode>? cacheMode = null, IEnumerable<string>? extraArgs = null, Version? qemuVersion = null, string? uefiCode = null)
    {
        Validate(spec);
        spec = PciLayout.Assign(spec);
        if (accelerator is not ("kvm" or "tcg"))
        {
            throw new ArgumentException($"unknown accelerator '{accelerator}' (kvm or tcg)", nameof(accelerator));
        }

        cacheMode ??= _ => DiskCacheMode.Writeback;
        var name = Escape(string.IsNullOrEmpty(spec.Name) ? spec.VmUuid : spec.Name);
        var a = new List<string>
        {
            // QEMU reads a first value without '=' as guest=...; a name that has '=' in it needs the key spelled out.
            "-name", $"{(name.Contains('=', StringComparison.Ordinal) ? "guest=" : "")}{name},process={ProcessName(spec.VmUuid)}",
            "-uuid", spec.VmUuid,
            // i440fx has the PIIX IDE controller that guests without virtio drivers boot from.
            "-machine", "pc",
            "-accel", accelerator,
            "-cpu", accelerator == "kvm" ? "host" : "max",
            "-m", MemoryArgument(spec.MemoryBytes, qemuVersion is not null && NeedsPageByPageDirtySync(accelerator, qemuVersion)),
            "-smp", SmpArgument(spec),
            "-nodefaults",
            "-display", "none",
            "-vga", "std",
            "-vnc", $"unix:{Escape(paths.Vnc)}",
            "-qmp", $"unix:{Escape(paths.Qmp)},server=on,wait=off",
            "-qmp", $"unix:{Escape(paths.Monitor)},server=on,wait=off",
            "-chardev", $"socket,id=ser0,path={Escape(paths.Console)},server=on,wait=off,logfile={Escape(paths.ConsoleLog)},logappend=on",
            "-serial", "chardev:ser0",
            "-pidfile", paths.PidFile,
        };

        if (spec.Uefi is not null)
        {
            // OVMF in place of SeaBIOS: its code read-only, the VM's own variable store beside it.
            var code = uefiCode ?? throw new ArgumentException("a UEFI VM needs the firmware's code", nameof(uefiCode));
            a.AddRange(["-drive", $"if=pflash,format=raw,unit=0,readonly=on,file={Escape(code)}", "-drive", $"if=pflash,format=raw,unit=1,file={Escape(paths.Nvram)}"]);
        }

        if (spec.Tpm is not null)
        {
            // The VM's swtpm (started before QEMU, see Swtpm) behind a CRB interface: TPM 2.0's own, which Windows 11,
            // Linux's tpm_crb, OVMF and SeaBIOS all drive; QEMU carries its state in a live migration's stream.
            a.AddRange(
            [
                "-chardev", $"socket,id=chrtpm,path={Escape(paths.TpmSocket)}",
                "-tpmdev", "emulator,id=tpm0,chardev=chrtpm",
                "-device", "tpm-crb,tpmdev=tpm0",
            ]);
        }

        if (spec.Lease is null)
        {
            // A VM with a lease is not a daemon of its own: the process that took the lease becomes QEMU, in a session of
            // its own (QemuHypervisor), and must stay that process for the lease manager to know it.
            a.Add("-daemonize");
        }

        // Every VM gets the QEMU guest agent's port, whatever its disks and cards are: a guest that has the agent (and
        // the virtio-serial driver, which Linux has built in) reports through it; one without sees a device it ignores.
        // The balloon shares the agent channel's slot, as its second function, so that it takes no slot a hot-plugged
        // device would (and a VM without one keeps its bus as it was).
        var multifunction = spec.Balloon ? ",multifunction=on" : "";
        a.AddRange(
        [
            "-device", $"virtio-serial-pci,id=vser0,addr={PciLayout.Address(PciLayout.GuestAgentSlot)}{multifunction}",
            "-chardev", $"socket,id=qga0,path={Escape(paths.Qga)},server=on,wait=off",
            "-device", $"virtserialport,chardev=qga0,name={GuestAgent.QgaClient.PortName}",
        ]);
        if (spec.Balloon)
        {
            a.AddRange(["-device", $"virtio-balloon-pci,id={BalloonDeviceId},addr={PciLayout.Address(PciLayout.GuestAgentSlot)}.1"]);
        }

        // Index order, as the agent names the guest's devices: virtio disks vda, vdb...; IDE slots hda (ide.0 master), hdb...
        var ideSlot = 0;
        foreach (var disk in spec.Disks.OrderBy(d => d.Index))
        {
            var id = DriveId(disk.Index);
            var drive = $"if=none,id={id}";
            if (disk.IsCdrom)
            {
                drive += ",media=cdrom";
            }

            if (disk.Path is not null)
            {
                if (QemuBlockProtocol.Credentials(disk.Path) is not null)
                {
                    // A CHAP LUN's password, from a root-only file the launcher wrote (QemuSecrets).
                    a.AddRange(["-object", $"secret,id={ChapSecretId(disk.Index)},file={Escape(paths.ChapSecret(disk.Index))}"]);
                }

                drive += QemuBlockProtocol.DriveOptions(disk.Path, disk.Format, ChapSecretId(disk.Index));
                if (!disk.IsCdrom)
                {
                    drive += cacheMode(disk) == DiskCacheMode.None ? ",cache=none" : ",cache=writeback";
                    drive += ",discard=unmap";
                }
            }

            if (disk.ReadOnly || disk.IsCdrom)
            {
                drive += ",readonly=on";
            }

            a.AddRange(["-drive", drive]);
            var boot = disk.Bootable ? $",bootindex={(disk.BootIndex ?? disk.Index).ToString(CultureInfo.InvariantCulture)}" : "";
            if (disk.IsCdrom || !spec.Paravirtual)
            {
                var kind = disk.IsCdrom ? "ide-cd" : "ide-hd";
                a.AddRange(["-device", $"{kind},drive={id},bus=ide.{ideSlot / 2},unit={ideSlot % 2}{boot}"]);
                ideSlot++;
            }
            else
            {
                a.AddRange(["-device", $"virtio-blk-pci,drive={id},id={DiskDeviceId(disk.Index)},addr={PciLayout.Address(disk.PciSlot!.Value)},num-queues={DiskQueues(spec).ToString(CultureInfo.InvariantCulture)}{boot}"]);
            }
        }

        foreach (var nic in spec.Nics.OrderBy(n => n.Index))
        {
            var model = NicModel(spec.Paravirtual);
            var id = NetdevId(nic.Index);
            a.AddRange(
            [
                "-netdev", $"tap,id={id},ifname={nic.TapName},script=no,downscript=no",
                "-device", $"{model},netdev={id},mac={nic.Mac.ToLowerInvariant()},id={NicDeviceId(nic.Index)},addr={PciLayout.Address(nic.PciSlot!.Value)}",
            ]);
        }

        foreach (var (key, value) in spec.FirmwareConfig.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            a.AddRange(["-fw_cfg", $"name={FirmwareConfigPrefix}{Escape(key)},string={Escape(value)}"]);
        }

        if (spec.IncomingMigration is not null)
        {
            a.AddRange(["-incoming", spec.IncomingMigration]);
        }

        if (extraArgs is not null)
        {
            a.AddRange(extraArgs);
        }

        return a;
    }

    /// <summary>Checks a launch spec before anything is written or started; a bad spec gets a clear <see cref="VmStartException"/>.</summary>
    public static void Validate(VmLaunchSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        static void Fail(string message) => throw new VmStartException(message);

        if (!Guid.TryParseExact(spec.VmUuid, "D", out _))
        {
            Fail($"'{spec.VmUuid}' is not a VM uuid (8-4-4-4-12 hexadecimal digits)");
        }

        if (spec.Name.Contains('\0', StringComparison.Ordinal))
        {
            Fail("the VM name contains a NUL character");
        }

        if (spec.MemoryBytes < 16L << 20)
        {
            Fail($"memory {spec.MemoryBytes} bytes is below the 16 MiB a VM needs");
        }

        if (spec.Vcpus is < 1 or > 255)
        {
            Fail($"{spec.Vcpus} vCPUs: the pc machine takes 1 to 255");
        }

        if (spec.MaxVcpus is { } maxVcpus && (maxVcpus < spec.Vcpus || maxVcpus > 255))
        {
            Fail($"at most {maxVcpus} vCPUs: that is below the {spec.Vcpus} the VM starts with, or above the 255 the pc machine takes");
        }

        var ide = 0;
        var indexes = new HashSet<int>();
        foreach (var disk in spec.Disks)
        {
            if (disk.Index < 0 || !indexes.Add(disk.Index))
            {
                Fail($"disk index {disk.Index} is negative or used twice");
            }

            if (disk.Path is null && !disk.IsCdrom)
            {
                Fail($"disk {disk.Index} has no image (only a CD drive may be empty)");
            }

            // An nfs:// URL is a disk on an NFS SR, which QEMU opens with its userspace nfs driver; an iscsi:// one an extent of an iSCSI SR's LUN.
            if (disk.Path is not null && ((!Path.IsPathFullyQualified(disk.Path) && !disk.Path.StartsWith("nfs://", StringComparison.Ordinal)
                                           && !disk.Path.StartsWith("iscsi://", StringComparison.Ordinal))
                                          || disk.Path.Contains('\0', StringComparison.Ordinal)))
            {
                Fail($"disk {disk.Index}: '{disk.Path}' is not an absolute path or nfs:// or iscsi:// URL");
            }

            if (disk.Path is not null && !FormatPattern().IsMatch(disk.Format))
            {
                Fail($"disk {disk.Index}: '{disk.Format}' is not an image format name");
            }

            if (disk.IsCdrom || !spec.Paravirtual)
            {
                ide++;
            }
        }

        if (ide > IdeSlots)
        {
            Fail($"the emulated IDE controller takes at most {IdeSlots} disks and CD drives; this VM has {ide}");
        }

        var nics = new HashSet<int>();
        foreach (var nic in spec.Nics)
        {
            if (nic.Index < 0 || !nics.Add(nic.Index))
            {
                Fail($"network card index {nic.Index} is negative or used twice");
            }

            if (!TapPattern().IsMatch(nic.TapName))
            {
                Fail($"'{nic.TapName}' is not a tap interface name (1 to 15 of A-Z a-z 0-9 . _ -)");
            }

            if (!MacPattern().IsMatch(nic.Mac))
            {
                Fail($"'{nic.Mac}' is not a MAC address (six hexadecimal pairs separated by ':')");
            }
        }

        foreach (var (key, value) in spec.FirmwareConfig)
        {
            if (!FirmwareKeyPattern().IsMatch(key) || FirmwareConfigPrefix.Length + key.Length > MaxFirmwareConfigName)
            {
                Fail($"firmware configuration key '{key}': use A-Z a-z 0-9 . _ - / and at most {MaxFirmwareConfigName - FirmwareConfigPrefix.Length} characters");
            }

            if (value.Contains('\0', StringComparison.Ordinal))
            {
                Fail($"firmware configuration value of '{key}' contains a NUL character");
            }
        }

        if (spec.IncomingMigration is { } incoming && (incoming.Length == 0 || incoming.Contains('\0', StringComparison.Ordinal)))
        {
            Fail("the incoming migration URI is empty");
        }
    }

    /// <summary>QEMU option values treat a comma as a separator; a literal comma is written twice.</summary>
    public static string Escape(string value) => value.Replace(",", ",,", StringComparison.Ordinal);

    /// <summary>The version in <c>qemu-system-x86_64 --version</c>'s first line ("QEMU emulator version 7.2.22 (...)").</summary>
    public static Version? ParseVersion(string versionOutput)
    {
        var match = VersionPattern().Match(versionOutput);
        return match.Success ? new Version(int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture), int.Parse(match.Groups[2].Value, CultureInfo.InvariantCulture),
            match.Groups[3].Success ? int.Parse(match.Groups[3].Value, CultureInfo.InvariantCulture) : 0) : null;
    }

    [GeneratedRegex(@"QEMU emulator version (\d+)\.(\d+)(?:\.(\d+))?")]
    private static partial Regex VersionPattern();

    [GeneratedRegex("^[a-z0-9]+$")]
    private static partial Regex FormatPattern();

    [GeneratedRegex("^[A-Za-z0-9._-]{1,15}$")]
    private static partial Regex TapPattern();

    [GeneratedRegex("^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")]
    private static partial Regex MacPattern();

    [GeneratedRegex("^[A-Za-z0-9._-][A-Za-z0-9._/-]*$")]
    private static partial Regex FirmwareKeyPattern();
}
