using Corral.Model;

namespace Corral.Api.Methods;

/// <summary>
/// A VM's power state as the API checks it (VM_BAD_POWER_STATE, OTHER_OPERATION_IN_PROGRESS), and how its record looks
/// once the pool declares it halted without its host's word (reset-powerstate, HA's fencing).
/// </summary>
public static class VmPowerStates
{
    /// <summary>A copy of <paramref name="vm"/> recorded halted: no host, no domain, no operation in flight.</summary>
    public static XenObject DeclaredHalted(XenObject vm)
    {
        var v = vm.Clone();
        v["power_state"] = "Halted";
        v["resident_on"] = OpaqueRef.Null;
        v["scheduled_to_be_resident_on"] = OpaqueRef.Null;
        v["domid"] = -1L;
        v["current_operations"] = new Dictionary<string, object?>();
        return v;
    }

    /// <summary>VM_BAD_POWER_STATE unless the VM is in one of <paramref name="allowed"/> (the first is the one named in the error).</summary>
    public static void Require(XenObject vm, params string[] allowed)
    {
        var actual = vm.GetString("power_state");
        if (!allowed.Contains(actual))
        {
            throw new XenApiException(ErrorCodes.VmBadPowerState, vm.Ref, allowed[0].ToLowerInvariant(), actual.ToLowerInvariant());
        }
    }

    /// <summary>OTHER_OPERATION_IN_PROGRESS while the VM has an operation in flight.</summary>
    public static void RequireNoOperation(XenObject vm)
    {
        if (((Dictionary<string, object?>)vm["current_operations"]!).Count > 0)
        {
            throw new XenApiException(ErrorCodes.OtherOperationInProgress, XenClasses.VM, vm.Ref);
        }
    }
}
