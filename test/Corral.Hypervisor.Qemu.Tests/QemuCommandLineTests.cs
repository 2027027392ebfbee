namespace Corral.Hypervisor.Qemu.Tests;

public class QemuCommandLineTests
{
    private const string Uuid = "6f1c2a3b-0000-4000-8000-000000000001";
    private static readonly VmRuntimePaths Paths = new("/run/corral/vms/" + Uuid);

    private static VmLaunchSpec Spec(bool paravirtual, string name = "web1", IReadOnlyList<DiskSpec>? disks = null, IReadOnlyList<NicSpec>? nics = null,
        IReadOnlyDictionary<string, string>? firmware = null, string? incoming = null) => new(
        Uuid, name, 256L << 20, 2, paravirtual,
        disks ?? [new DiskSpec(0, "/sr/a.qcow2", "qcow2", false, false, true), new DiskSpec(3, null, "raw", true, true, false)],
        nics ?? [new NicSpec(0, "vif5.0", "02:00:00:00:00:01")],
        firmware ?? new Dictionary<string, string> { ["vm-data/ip"] = "10.0.0.5/24" },
        incoming);

    /// <summary>The argument that follows <paramref name="option"/>, for each time it appears.</summary>
    private static List<string> ValuesOf(IReadOnlyList<string> args, string option) =>
        args.Select((a, i) => (a, i)).Where(x => x.a == option && x.i + 1 < args.Count).Select(x => args[x.i + 1]).ToList();

    [Fact]
    public void Uefi_guests_boot_ovmf_with_their_own_variable_store_and_the_boot_order_given()
    {
        var spec = Spec(true, disks: [new DiskSpec(0, "/sr/a.qcow2", "qcow2", false, false, true, BootIndex: 256), new DiskSpec(3, "/iso/x.iso", "raw", true, true, true, BootIndex: 3)])
            with { Uefi = new UefiSpec(null) };
        var args = QemuCommandLine.Build(spec, Paths, "tcg", uefiCode: "/usr/share/OVMF/OVMF_CODE_4M.fd");
        Assert.Equal(["if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd", $"if=pflash,format=raw,unit=1,file={Paths.Nvram}"],
            ValuesOf(args, "-drive").Where(d => d.StartsWith("if=pflash", StringComparison.Ordinal)));
        Assert.Contains("virtio-blk-pci,drive=drive0,id=vbd0,addr=0x4,num-queues=2,bootindex=256", ValuesOf(args, "-device"));
        Assert.Contains(ValuesOf(args, "-device"), d => d.StartsWith("ide-cd,drive=drive3", StringComparison.Ordinal) && d.EndsWith(",bootindex=3", StringComparison.Ordinal));
        Assert.DoesNotContain(ValuesOf(QemuCommandLine.Build(Spec(true), Paths, "tcg"), "-drive"), d => d.Contains("pflash", StringComparison.Ordinal));
        Assert.Throws<ArgumentException>(() => QemuCommandLine.Build(spec, Paths, "tcg"));
    }

    [Fact]
    public void Paravirtual_guests_get_virtio_disks_and_nics_and_the_qemu_guest_agent_port()
    {
        var args = QemuCommandLine.Build(Spec(true), Paths, "tcg");
        var devices = ValuesOf(args, "-device");
        Assert.Contains("virtio-blk-pci,drive=drive0,id=vbd0,addr=0x4,num-queues=2,bootindex=0", devices);
        Assert.Contains("virtio-net-pci,netdev=net0,mac=02:00:00:00:00:01,id=vif0,addr=0x5", devices);
        Assert.Contains("virtio-serial-pci,id=vser0,addr=0x3", devices);
        Assert.DoesNotContain(devices, d => d.Contains("org.corral.guest_agent.0", StringComparison.Ordinal));
        Assert.Contains("virtserialport,chardev=qga0,name=org.qemu.guest_agent.0", devices);
        Assert.Contains($"socket,id=qga0,path={Paths.Qga},server=on,wait=off", ValuesOf(args, "-chardev"));
        // CD drives stay on the IDE controller even for paravirtual guests; empty is allowed.
        Assert.Contains("ide-cd,drive=drive3,bus=ide.0,unit=0", devices);
        Assert.Contains("if=none,id=drive3,media=cdrom,readonly=on", ValuesOf(args, "-drive"));
        Assert.Contains("tap,id=net0,ifname=vif5.0,script=no,downscript=no", ValuesOf(args, "-netdev"));
    }

    [Fact]
    public void Emulated_guests_get_ide_disks_and_e1000_and_only_the_qemu_guest_agents_port()
    {
        var args = QemuCommandLine.Build(Spec(false), Paths, "tcg");
        var devices = ValuesOf(args, "-device");
        Assert.Contains("ide-hd,drive=drive0,bus=ide.0,unit=0,bootindex=0", devices);
        Assert.Contains("ide-cd,drive=drive3,bus=ide.0,unit=1", devices);
        Assert.Contains("e1000,netdev=net0,mac=02:00:00:00:00:01,id=vif0,addr=0x4", devices);
        Assert.DoesNotContain(devices, d => d.StartsWith("virtio-blk", StringComparison.Ordinal) || d.StartsWith("virtio-net", StringComparison.Ordinal));
        // The QEMU guest agent's port is every VM's: a guest that has the agent reports, whatever its disks and cards.
        Assert.Contains("virtio-serial-pci,id=vser0,addr=0x3", devices);
        Assert.Contains("virtserialport,chardev=qga0,name=org.qemu.guest_agent.0", devices);
        Assert.DoesNotContain(devices, d => d.Contains("org.corral.guest_agent.0", StringComparison.Ordinal));
    }

    [Fact]
    public void Tcg_before_qemu_9_gets_ram_off_256_kib_so_migration_syncs_dirty_pages_one_by_one()
    {
        var v7 = QemuCommandLine.ParseVersion("QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18)\nCopyright (c) 2003-2022 Fabrice Bellard");
        Assert.Equal(new Version(7, 2, 22), v7);
        Assert.Equal(new Version(10, 0, 2), QemuCommandLine.ParseVersion("QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)"));
        Assert.Equal(new Version(9, 0, 0), QemuCommandLine.ParseVersion("QEMU emulator version 9.0"));
        Assert.Null(QemuCommandLine.ParseVersion("qemu-kvm: command not found"));

        // 256 MiB less 8 KiB: a multiple of QEMU's 8 KiB RAM alignment, of no 256 KiB.
        Assert.Equal(["262136K"], ValuesOf(QemuCommandLine.Build(Spec(true), Paths, "tcg", qemuVersion: v7), "-m"));
        Assert.NotEqual(0, 262136 % 256);
        Assert.Equal(0, 262136 % 8);
        Assert.Equal(["256"], ValuesOf(QemuCommandLine.Build(Spec(true), Paths, "tcg", qemuVersion: new Version(9, 0, 0)), "-m"));
        Assert.Equal(["256"], ValuesOf(QemuCommandLine.Build(Spec(true), Paths, "kvm", qemuVersion: v7), "-m"));
        Assert.Equal("1024", QemuCommandLine.MemoryArgument((1L << 30) - 1, pageByPageDirtySync: false));
        Assert.Equal("1048568K", QemuCommandLine.MemoryArgument(1L << 30, pageByPageDirtySync: true));
    }

    [Fact]
    public void The_machine_is_headless_daemonized_and_reachable_over_its_runtime_directory()
    {
        var args = QemuCommandLine.Build(Spec(true), Paths, "tcg");
        Assert.Equal(["pc"], ValuesOf(args, "-machine"));
        Assert.Equal(["tcg"], ValuesOf(args, "-accel"));
        Assert.Equal(["max"], ValuesOf(args, "-cpu"));
        Assert.Equal(["256"], ValuesOf(args, "-m"));
        Assert.Equal(["2"], ValuesOf(args, "-smp"));
        Assert.Equal([Uuid], ValuesOf(args, "-uuid"));
        Assert.Equal(["none"], ValuesOf(args, "-display"));
        Assert.Equal([$"unix:{Paths.Vnc}"], ValuesOf(args, "-vnc"));
        Assert.Equal([$"unix:{Paths.Qmp},server=on,wait=off", $"unix:{Paths.Monitor},server=on,wait=off"], ValuesOf(args, "-qmp"));
        Assert.Equal(["chardev:ser0"], ValuesOf(args, "-serial"));
        Assert.Contains($"socket,id=ser0,path={Paths.Console},server=on,wait=off,logfile={Paths.ConsoleLog},logappend=on", ValuesOf(args, "-chardev"));
        Assert.Equal([Paths.PidFile], ValuesOf(args, "-pidfile"));
        Assert.Contains("-daemonize", args);
        Assert.Contains("-nodefaults", args);
        Assert.DoesNotContain("-no-shutdown", args); // a guest that powers off ends its QEMU
        Assert.Equal(["web1,process=corral-6f1c2a3b"], ValuesOf(args, "-name"));
    }

    [Fact]
    public void Kvm_runs_the_host_cpu()
    {
        var args = QemuCommandLine.Build(Spec(true), Paths, "kvm");
        Assert.Equal(["kvm"], ValuesOf(args, "-accel"));
        Assert.Equal(["host"], ValuesOf(args, "-cpu"));
        Assert.Throws<ArgumentException>(() => QemuCommandLine.Build(Spec(true), Paths, "hvf"));
    }

    [Fact]
    public void Commas_in_values_are_doubled_and_a_name_with_an_equals_sign_names_its_key()
    {
        var spec = Spec(true, name: "web, 1",
            disks: [new DiskSpec(0, "/sr/odd,name.qcow2", "qcow2", false, false, true)],
            firmware: new Dictionary<string, string> { ["vm-data/motd"] = "a,b=c" });
        var args = QemuCommandLine.Build(spec, Paths, "tcg");
        Assert.Equal(["web,, 1,process=corral-6f1c2a3b"], ValuesOf(args, "-name"));
        Assert.Contains("if=none,id=drive0,file=/sr/odd,,name.qcow2,format=qcow2,cache=writeback,discard=unmap", ValuesOf(args, "-drive"));
        Assert.Equal(["name=opt/corral/vm-data/motd,string=a,,b=c"], ValuesOf(args, "-fw_cfg"));

        var withEquals = QemuCommandLine.Build(Spec(true, name: "a=b"), Paths, "tcg");
        Assert.Equal(["guest=a=b,process=corral-6f1c2a3b"], ValuesOf(withEquals, "-name"));
    }

    [Fact]
    public void Disks_follow_their_index_and_the_cache_mode_chosen_for_each()
    {
        var spec = Spec(true, disks:
        [
            new DiskSpec(1, "/sr/data.qcow2", "qcow2", true, false, false),
            new DiskSpec(0, "/sr/root.qcow2", "qcow2", false, false, true),
        ]);
        var args = QemuCommandLine.Build(spec, Paths, "tcg", d => d.Index == 0 ? DiskCacheMode.None : DiskCacheMode.Writeback);
        var drives = ValuesOf(args, "-drive");
        Assert.Equal("if=none,id=drive0,file=/sr/root.qcow2,format=qcow2,cache=none,discard=unmap", drives[0]);
        Assert.Equal("if=none,id=drive1,file=/sr/data.qcow2,format=qcow2,cache=writeback,discard=unmap,readonly=on", drives[1]);
        var devices = ValuesOf(args, "-device");
        Assert.Contains("virtio-blk-pci,drive=drive0,id=vbd0,addr=0x4,num-queues=2,bootindex=0", devices);
        Assert.Contains("virtio-blk-pci,drive=drive1,id=vbd1,addr=0x5,num-queues=2", devices);
        Assert.Contains("virtio-net-pci,netdev=net0,mac=02:00:00:00:00:01,id=vif0,addr=0x6", devices);
    }

    [Fact]
    public void Pci_devices_keep_the_slots_they_have_and_the_others_fill_the_bus_as_qemu_would()
    {
        // Nothing placed yet: QEMU's own order (agent channel, virtio disks by index, cards by index) from slot 3 on.
        var fresh = PciLayout.Assign(Spec(true, disks:
        [
            new DiskSpec(2, "/sr/b.qcow2", "qcow2", false, false, false),
            new DiskSpec(0, "/sr/a.qcow2", "qcow2", false, false, true),
            new DiskSpec(3, null, "raw", true, true, false, PciSlot: 9),
        ]));
        Assert.Equal(new (int, int?)[] { (0, 4), (2, 5), (3, null) }, fresh.Disks.Select(d => (d.Index, d.PciSlot)));
        Assert.Equal(6, Assert.Single(fresh.Nics).PciSlot);
        Assert.Equal(fresh, PciLayout.Assign(fresh), new LayoutComparer());

        // A VM with devices plugged at run time: they keep their slots, the others fill the gaps.
        var moved = PciLayout.Assign(Spec(true,
            disks: [new DiskSpec(0, "/sr/a.qcow2", "qcow2", false, false, true), new DiskSpec(1, "/sr/b.qcow2", "qcow2", false, false, false, PciSlot: 4)],
            nics: [new NicSpec(0, "vif5.0", "02:00:00:00:00:01", PciSlot: 7)]));
        Assert.Equal(new (int, int?)[] { (0, 5), (1, 4) }, moved.Disks.Select(d => (d.Index, d.PciSlot)));
        Assert.Equal(6, PciLayout.NextFree(moved));
        var devices = ValuesOf(QemuCommandLine.Build(moved, Paths, "tcg"), "-device");
        Assert.Contains("virtio-blk-pci,drive=drive1,id=vbd1,addr=0x4,num-queues=2", devices);
        Assert.Contains("virtio-net-pci,netdev=net0,mac=02:00:00:00:00:01,id=vif0,addr=0x7", devices);

        // Without the agent channel an emulated VM's first card takes slot 3.
        Assert.Equal(4, Assert.Single(PciLayout.Assign(Spec(false)).Nics).PciSlot); // slot 3 is the guest agent's port, every VM's
    }

    [Fact]
    public void Slots_out_of_range_taken_twice_or_beyond_a_full_bus_are_refused()
    {
        static string Error(VmLaunchSpec spec) => Assert.Throws<VmStartException>(() => PciLayout.Assign(spec)).Message;

        Assert.Contains("PCI slot 3", Error(Spec(true, nics: [new NicSpec(0, "t0", "02:00:00:00:00:01", PciSlot: 3)])), StringComparison.Ordinal);
        Assert.Contains("PCI slot 2", Error(Spec(false, nics: [new NicSpec(0, "t0", "02:00:00:00:00:01", PciSlot: 2)])), StringComparison.Ordinal);
        Assert.Contains("PCI slot 32", Error(Spec(false, nics: [new NicSpec(0, "t0", "02:00:00:00:00:01", PciSlot: 32)])), StringComparison.Ordinal);
        Assert.Contains("already taken", Error(Spec(true,
            disks: [new DiskSpec(0, "/a", "raw", false, false, true, PciSlot: 8)],
            nics: [new NicSpec(0, "t0", "02:00:00:00:00:01", PciSlot: 8)])), StringComparison.Ordinal);
        var many = Enumerable.Range(0, 29).Select(i => new NicSpec(i, $"t{i}", "02:00:00:00:00:01")).ToList();
        Assert.Contains("no PCI slot left", Error(Spec(false, nics: many)), StringComparison.Ordinal);
        Assert.Null(PciLayout.NextFree(PciLayout.Assign(Spec(false, nics: many[..28]))));
    }

    private sealed class LayoutComparer : IEqualityComparer<VmLaunchSpec>
    {
        public bool Equals(VmLaunchSpec? x, VmLaunchSpec? y) => x is not null && y is not null && x.Disks.SequenceEqual(y.Disks) && x.Nics.SequenceEqual(y.Nics);

        public int GetHashCode(VmLaunchSpec obj) => obj.Disks.Count;
    }

    [Fact]
    public void Emulated_guests_fill_the_two_ide_buses_in_index_order_and_no_further()
    {
        var disks = Enumerable.Range(0, 4).Select(i => new DiskSpec(i, $"/sr/d{i}.qcow2", "qcow2", false, false, i == 0)).ToList();
        var devices = ValuesOf(QemuCommandLine.Build(Spec(false, disks: disks), Paths, "tcg"), "-device");
        Assert.Contains("ide-hd,drive=drive0,bus=ide.0,unit=0,bootindex=0", devices);
        Assert.Contains("ide-hd,drive=drive1,bus=ide.0,unit=1", devices);
        Assert.Contains("ide-hd,drive=drive2,bus=ide.1,unit=0", devices);
        Assert.Contains("ide-hd,drive=drive3,bus=ide.1,unit=1", devices);

        var five = disks.Append(new DiskSpec(4, null, "raw", true, true, false)).ToList();
        var error = Assert.Throws<VmStartException>(() => QemuCommandLine.Build(Spec(false, disks: five), Paths, "tcg"));
        Assert.Contains("at most 4", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Firmware_configuration_is_sorted_and_incoming_migration_and_extra_arguments_are_passed()
    {
        var spec = Spec(true, firmware: new Dictionary<string, string> { ["vm-data/ip"] = "10.0.0.5/24", ["vm-data/gateway"] = "10.0.0.1" },
            incoming: "tcp:127.0.0.1:4444");
        var args = QemuCommandLine.Build(spec, Paths, "tcg", extraArgs: ["-rtc", "base=utc"]);
        Assert.Equal(["name=opt/corral/vm-data/gateway,string=10.0.0.1", "name=opt/corral/vm-data/ip,string=10.0.0.5/24"], ValuesOf(args, "-fw_cfg"));
        Assert.Equal(["tcp:127.0.0.1:4444"], ValuesOf(args, "-incoming"));
        Assert.Equal(["-rtc", "base=utc"], args.TakeLast(2));
    }

    [Theory]
    [InlineData("not-a-uuid", "is not a VM uuid")]
    [InlineData("../../../../etc/passwd0000000000000000", "is not a VM uuid")]
    public void Bad_uuids_are_refused_before_they_become_paths(string uuid, string message)
    {
        var spec = Spec(true) with { VmUuid = uuid };
        Assert.Contains(message, Assert.Throws<VmStartException>(() => QemuCommandLine.Validate(spec)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Bad_devices_and_sizes_get_clear_errors()
    {
        static string Error(VmLaunchSpec spec) => Assert.Throws<VmStartException>(() => QemuCommandLine.Validate(spec)).Message;

        Assert.Contains("below the 16 MiB", Error(Spec(true) with { MemoryBytes = 1024 }), StringComparison.Ordinal);
        Assert.Contains("vCPUs", Error(Spec(true) with { Vcpus = 0 }), StringComparison.Ordinal);
        Assert.Contains("used twice", Error(Spec(true, disks: [new DiskSpec(0, "/a", "raw", false, false, true), new DiskSpec(0, "/b", "raw", false, false, false)])),
            StringComparison.Ordinal);
        Assert.Contains("only a CD drive may be empty", Error(Spec(true, disks: [new DiskSpec(0, null, "raw", false, false, true)])), StringComparison.Ordinal);
        Assert.Contains("not an absolute path", Error(Spec(true, disks: [new DiskSpec(0, "disk.qcow2", "qcow2", false, false, true)])), StringComparison.Ordinal);
        Assert.Contains("image format", Error(Spec(true, disks: [new DiskSpec(0, "/a", "qcow2,x=y", false, false, true)])), StringComparison.Ordinal);
        Assert.Contains("tap interface", Error(Spec(true, nics: [new NicSpec(0, "a-very-long-tap-name", "02:00:00:00:00:01")])), StringComparison.Ordinal);
        Assert.Contains("tap interface", Error(Spec(true, nics: [new NicSpec(0, "tap0,script=/x", "02:00:00:00:00:01")])), StringComparison.Ordinal);
        Assert.Contains("MAC address", Error(Spec(true, nics: [new NicSpec(0, "tap0", "02:00:00:00:01")])), StringComparison.Ordinal);
        Assert.Contains("firmware configuration key", Error(Spec(true, firmware: new Dictionary<string, string> { [new string('k', 45)] = "v" })),
            StringComparison.Ordinal);
        Assert.Contains("firmware configuration key", Error(Spec(true, firmware: new Dictionary<string, string> { ["a,b"] = "v" })), StringComparison.Ordinal);
    }

    [Fact]
    public void Socket_paths_that_do_not_fit_a_unix_socket_are_refused()
    {
        new VmRuntimePaths("/run/corral/vms/" + Uuid).EnsureSocketPathsFit();
        var deep = new VmRuntimePaths("/var/lib/a-rather-long-directory-name/for-runtime-files/vms/" + Uuid);
        Assert.Contains("107 bytes", Assert.Throws<VmStartException>(deep.EnsureSocketPathsFit).Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("running", VmRunState.Running)]
    [InlineData("paused", VmRunState.Paused)]
    [InlineData("inmigrate", VmRunState.Paused)]
    [InlineData("postmigrate", VmRunState.Migrating)]
    [InlineData("shutdown", VmRunState.ShutDown)]
    [InlineData("internal-error", VmRunState.Crashed)]
    [InlineData("guest-panicked", VmRunState.Crashed)]
    [InlineData("something-new", VmRunState.Unknown)]
    public void Qemu_run_states_fold_to_corral_states(string status, VmRunState expected) =>
        Assert.Equal(expected, QemuVmProcess.MapRunState(status));
}
