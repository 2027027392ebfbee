using Corral.Model;

namespace Corral.Api.Methods;

/// <summary>
/// A VM's power state as the API checks it (VM_BAD_POWER_STATE), and how its record looks
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

    /// <summary>VM_BAD_POWER_STATE unless the VM is in one of <paramref name="allowed"/>, all named in the error as xapi names them.</summary>
    public static void Require(XenObject vm, params string[] allowed)
    {
        var actual = vm.GetString("power_state");
        if (!allowed.Contains(actual))
        {
            throw new XenApiException(ErrorCodes.VmBadPowerState, vm.Ref, string.Join(", ", allowed.Select(s => s.ToLowerInvariant())), actual.ToLowerInvariant());
        }
    }
}
