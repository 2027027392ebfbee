using Corral.Cli;
using Corral.Hypervisor;
using Corral.Hypervisor.Qemu;
using Xunit;

namespace Corral.UnitTests;

public class CliTests
{
    [Fact]
    public void Arguments_split_into_command_parameters_flags_and_connection()
    {
        var a = CliArguments.Parse(["-s", "10.0.0.1", "-pw", "secret", "vm-shutdown", "vm=web 1", "other-config:k=v=w", "--force", "--minimal"]);
        Assert.Equal("vm-shutdown", a.Command);
        Assert.Equal("10.0.0.1", a.Server);
        Assert.Equal("secret", a.Password);
        Assert.Equal("web 1", a.Get("vm"));
        Assert.Equal("v=w", a.Get("other-config:k"));
        Assert.True(a.Force && a.Minimal);
    }

    [Fact]
    public void Malformed_parameters_are_refused_with_xe_wording()
    {
        var ex = Assert.Throws<CliException>(() => CliArguments.Parse(["vm-list", "power-state"]));
        Assert.Contains("key=value", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Dot_xe_fills_only_what_the_command_line_left_out()
    {
        var file = Path.GetTempFileName();
        File.WriteAllLines(file, ["server=10.1.1.1", "port=8480", "username=root", "password=fromfile", "nossl=true"]);
        var a = CliArguments.Parse(["-pw", "given", "host-list"]);
        a.ApplyConfigFile(file);
        File.Delete(file);
        Assert.Equal("10.1.1.1", a.Server);
        Assert.Equal(8480, a.Port);
        Assert.Equal("given", a.Password);
    }

    [Theory]
    [InlineData("1024", 1024L)]
    [InlineData("10GiB", 10L << 30)]
    [InlineData("512MiB", 512L << 20)]
    [InlineData("4G", 4L << 30)]
    public void Sizes_take_xe_suffixes(string text, long bytes) => Assert.Equal(bytes, Commands.Size(text));

    [Fact]
    public void Records_print_as_xe_prints_them()
    {
        var text = Printer.Record([("uuid", "RO", "0b1e"), ("name-label", "RW", "web"), ("power-state", "RO", "running")]);
        Assert.Equal(
            "uuid ( RO)           : 0b1e\n" +
            "     name-label ( RW): web\n" +
            "    power-state ( RO): running\n", text);
    }

    [Fact]
    public void Maps_and_sets_print_with_semicolons()
    {
        Assert.Equal("0/ip: 10.0.0.5; 0/ipv4/0: 10.0.0.5", Printer.Format(new Dictionary<string, object?> { ["0/ip"] = "10.0.0.5", ["0/ipv4/0"] = "10.0.0.5" }));
        Assert.Equal("a; b", Printer.Format(new List<object?> { "a", "b" }));
        Assert.Equal("running", Printer.Format("Running", Corral.Model.XenClasses.PowerState));
    }

    [Fact]
    public void Every_default_list_parameter_exists()
    {
        foreach (var (cls, names) in ParamCatalog.DefaultListParams)
        {
            var catalog = ParamCatalog.For(cls).Select(p => p.Name).ToHashSet();
            foreach (var name in names)
            {
                Assert.Contains(name, catalog);
            }
        }
    }
}

public class QemuCommandLineTests
{
    private static VmLaunchSpec Spec(bool paravirtual) => new(
        "6f1c2a3b-0000-4000-8000-000000000001", "web, 1", 256L << 20, 2, paravirtual,
        [new DiskSpec(0, "/sr/a.qcow2", "qcow2", false, false, true), new DiskSpec(3, null, "raw", true, true, false)],
        [new NicSpec(0, "vif5.0", "02:00:00:00:00:01")],
        new Dictionary<string, string> { ["vm-data/ip"] = "10.0.0.5/24" });

    [Fact]
    public void Paravirtual_guests_get_virtio_devices_and_the_agent_channel()
    {
        var args = string.Join(' ', QemuCommandLine.Build(Spec(true), new VmRuntimePaths("/run/vm"), "tcg"));
        Assert.Contains("virtio-blk-pci,drive=drive0,bootindex=0", args, StringComparison.Ordinal);
        Assert.Contains("virtio-net-pci,netdev=net0,mac=02:00:00:00:00:01", args, StringComparison.Ordinal);
        Assert.Contains("name=org.corral.guest_agent.0", args, StringComparison.Ordinal);
        Assert.Contains("ide-cd,drive=drive3", args, StringComparison.Ordinal);
        Assert.Contains("-daemonize", args, StringComparison.Ordinal);
        Assert.Contains("name=opt/corral/vm-data/ip,string=10.0.0.5/24", args, StringComparison.Ordinal);
        Assert.Contains("-name web,, 1,process=", args, StringComparison.Ordinal);
    }

    [Fact]
    public void Emulated_guests_get_ide_and_e1000_and_no_virtio()
    {
        var args = string.Join(' ', QemuCommandLine.Build(Spec(false), new VmRuntimePaths("/run/vm"), "tcg"));
        Assert.Contains("ide-hd,drive=drive0,bus=ide.0,unit=0", args, StringComparison.Ordinal);
        Assert.Contains("e1000,netdev=net0", args, StringComparison.Ordinal);
        Assert.DoesNotContain("virtio", args, StringComparison.Ordinal);
    }

    [Fact]
    public void Guest_agent_reports_parse_and_noise_is_ignored()
    {
        var report = QemuVmProcess.TryParseReport("""{"agent":"corral-guest-agent","version":"1.0.0","uptime":12.5,"networks":{"0/ip":"10.0.0.5"},"pv_drivers":{"virtio_net":"1"}}""", DateTime.UtcNow);
        Assert.NotNull(report);
        Assert.Equal("10.0.0.5", report.Networks["0/ip"]);
        Assert.Equal(12.5, report.Uptime.TotalSeconds);
        Assert.Null(QemuVmProcess.TryParseReport("""{"ack":"shutdown"}""", DateTime.UtcNow));
        Assert.Null(QemuVmProcess.TryParseReport("garbage", DateTime.UtcNow));
    }
}
