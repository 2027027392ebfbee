using Corral.Api.Methods;
using Corral.Model;
using Corral.WebConsole.Consoles;
using Xunit;

namespace Corral.UnitTests;

public sealed class LiveMigrationCompatibilityTests
{
    private static XenObject Host(string name, string? accelerator)
    {
        var config = new Dictionary<string, object?>();
        if (accelerator is not null)
        {
            config[Placement.AcceleratorKey] = accelerator;
        }

        return new XenObject(XenClasses.HostSchema, "OpaqueRef:" + name, new Dictionary<string, object?>
        {
            ["uuid"] = Guid.NewGuid().ToString(), ["name_label"] = name, ["other_config"] = config,
        });
    }

    private static readonly XenObject Vm = new(XenClasses.VMSchema, "OpaqueRef:vm", new Dictionary<string, object?> { ["uuid"] = Guid.NewGuid().ToString() });

    [Theory]
    [InlineData("tcg", "tcg")]
    [InlineData("kvm", "kvm")]
    [InlineData(null, "kvm")]
    [InlineData("tcg", null)]
    public void Hosts_that_run_vms_alike_or_not_yet_known_accept_a_live_migration(string? source, string? destination) =>
        Placement.CheckLiveMigrationCompatible(Vm, Host("a", source), Host("b", destination));

    [Fact]
    public void A_vm_never_moves_live_between_kvm_and_tcg()
    {
        var refused = Assert.Throws<XenApiException>(() => Placement.CheckLiveMigrationCompatible(Vm, Host("lab-host1", "kvm"), Host("lab-host2", "tcg")));
        Assert.Equal(ErrorCodes.VmIncompatibleWithThisHost, refused.Code);
        Assert.Equal(["OpaqueRef:vm", "OpaqueRef:lab-host2"], refused.Parameters.Take(2));
        Assert.Contains("kvm on lab-host1", refused.Parameters[2], StringComparison.Ordinal);
        Assert.Contains("tcg on lab-host2", refused.Parameters[2], StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("10.7.0.11", 443, "abc", "https://10.7.0.11/console?uuid=abc")]
    [InlineData("10.7.0.11", 8443, "abc", "https://10.7.0.11:8443/console?uuid=abc")]
    [InlineData("fd00::1", 443, "abc", "https://[fd00::1]/console?uuid=abc")]
    public void A_console_is_located_on_its_host_as_xenserver_writes_it(string address, int port, string uuid, string expected) =>
        Assert.Equal(expected, ConsoleLocation.For(address, port, uuid));
}
