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
    public void Secure_boot_and_a_garbled_store_are_refused_by_name()
    {
        Assert.Equal([ErrorCodes.ValueNotSupported, "platform:secureboot", "true"], Assert.Throws<XenApiException>(() => VmNvram.SpecOf(Vm("uefi", "true"))).ErrorDescription.Take(3));
        Assert.Equal(ErrorCodes.InvalidValue, Assert.Throws<XenApiException>(() => VmNvram.SpecOf(Vm("uefi", null, "%%%"))).Code);
    }
}
