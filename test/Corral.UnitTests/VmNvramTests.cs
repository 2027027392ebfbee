using Corral.Agent.Vms;
using Corral.Model;
using Corral.PoolDatabase;
using Xunit;

namespace Corral.UnitTests;

/// <summary>Which firmware a VM boots and the UEFI variable store it takes, from its record.</summary>
public sealed class VmNvramTests
{
    private static XenObject Vm(string? firmware, string? secureboot = null, string? variables = null)
    {
        var vm = new PoolTransaction().Create(XenClasses.VMSchema);
        vm.Set(XenApi.VM.HVMBootParams, firmware is null ? new Dictionary<string, string>() : new Dictionary<string, string> { ["firmware"] = firmware });
        vm.Set(XenApi.VM.Platform, secureboot is null ? new Dictionary<string, string>() : new Dictionary<string, string> { ["secureboot"] = secureboot });
        vm.Set(XenApi.VM.NVRAM, variables is null ? new Dictionary<string, string>() : new Dictionary<string, string> { [VmNvram.VariablesKey] = variables });
        return vm;
    }

    [Fact]
    public void Bios_vms_have_no_uefi_and_uefi_vms_take_their_stored_variables()
    {
        Assert.Null(VmNvram.SpecOf(Vm(null)));
        Assert.Null(VmNvram.SpecOf(Vm("bios")));
        Assert.Null(VmNvram.SpecOf(Vm("uefi"))!.Variables);
        Assert.Null(VmNvram.SpecOf(Vm("uefi", "auto"))!.Variables);
        Assert.Equal([1, 2, 3], VmNvram.SpecOf(Vm("uefi", "false", Convert.ToBase64String([1, 2, 3])))!.Variables);
        Assert.Equal(Convert.ToBase64String([9]), VmNvram.With(new Dictionary<string, string> { ["other"] = "x" }, [9])[VmNvram.VariablesKey]);
    }

    [Fact]
    public void Secure_boot_is_what_the_platform_says_once_vm_start_resolved_auto()
    {
        Assert.True(VmNvram.SpecOf(Vm("uefi", "true"))!.SecureBoot);
        Assert.True(VmNvram.SpecOf(Vm("uefi", "true", Convert.ToBase64String([1, 2, 3])))!.SecureBoot);
        Assert.False(VmNvram.SpecOf(Vm("uefi", "false"))!.SecureBoot);
        Assert.False(VmNvram.SpecOf(Vm("uefi"))!.SecureBoot);

        // VM.start records auto as true, as xapi does when the pool has certificates (Corral's always has).
        var vm = Vm("uefi", "auto");
        Corral.Api.Methods.VmStarter.ResolveSecureBoot(vm);
        Assert.Equal("true", vm.Get(XenApi.VM.Platform)["secureboot"]);
        var off = Vm("uefi", "false");
        Corral.Api.Methods.VmStarter.ResolveSecureBoot(off);
        Assert.Equal("false", off.Get(XenApi.VM.Platform)["secureboot"]);
        var unset = Vm("uefi");
        Corral.Api.Methods.VmStarter.ResolveSecureBoot(unset);
        Assert.False(unset.Get(XenApi.VM.Platform).ContainsKey("secureboot"));
    }

    [Fact]
    public void A_garbled_store_is_refused_by_name()
    {
        Assert.Equal(ErrorCodes.InvalidValue, Assert.Throws<XenApiException>(() => VmNvram.SpecOf(Vm("uefi", null, "%%%"))).Code);
    }
}
