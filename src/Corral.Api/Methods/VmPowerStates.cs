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
        v.Set(XenApi.VM.PowerState, VmPowerState.Halted);
        v.Set(XenApi.VM.ResidentOn, OpaqueRef.Null);
        v.Set(XenApi.VM.ScheduledToBeResidentOn, OpaqueRef.Null);
        v.Set(XenApi.VM.Domid, -1L);
        v.Set(XenApi.VM.CurrentOperations, new Dictionary<string, VmOperations>());
        return v;
    }

    /// <summary>VM_BAD_POWER_STATE unless the VM is in one of <paramref name="allowed"/>, all named in the error as xapi names them.</summary>
    public static void Require(XenObject vm, params VmPowerState[] allowed)
    {
        var actual = vm.Get(XenApi.VM.PowerState);
        if (!allowed.Contains(actual))
        {
            throw new XenApiException(ErrorCodes.VmBadPowerState, vm.Ref, string.Join(", ", allowed.Select(Lower)), Lower(actual));
        }
    }

    private static string Lower(VmPowerState state) => XenEnum.ToWire(XenEnumTypes.VmPowerState, state).ToLowerInvariant();
}
