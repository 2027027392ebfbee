using Corral.Model;

namespace Corral.Api.Methods;

/// <summary>How a VM record looks once the pool declares it halted without its host's word (reset-powerstate, HA's fencing).</summary>
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
}
