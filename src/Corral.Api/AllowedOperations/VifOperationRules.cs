using Corral.Model;
using static Corral.Model.VifOperations;

namespace Corral.Api.AllowedOperations;

/// <summary>Which operations a VIF allows, as xapi decides them (xapi_vif_helpers: the first error recorded wins).</summary>
public static class VifOperationRules
{
    public static readonly IReadOnlyList<VifOperations> Candidates = Enum.GetValues<VifOperations>();

    public static IReadOnlyList<VifOperations> Allowed(VifFacts vif, ImplementedOperations implemented) =>
        Candidates.Where(op => implemented.Has(op) && Check(vif, op) is null).ToList();

    public static OperationError? Check(VifFacts vif, VifOperations op)
    {
        if (!vif.CurrentOperations.IsEmpty)
        {
            // xapi names every operation in progress, newest first, in braces.
            var entries = vif.CurrentOperations.Entries.Reverse().ToList();
            return OperationError.Of(ErrorCodes.OtherOperationInProgress, XenClasses.VIF, vif.Ref,
                "{" + string.Join("; ", entries.Select(e => XenEnum.ToWire(XenEnumTypes.VifOperations, e.Value))) + "}",
                "{" + string.Join("; ", entries.Select(e => e.Key)) + "}");
        }

        if (op == Attach)
        {
            return null;
        }

        if (op == Plug && vif.Vm.IsDomainZero)
        {
            return OperationError.Of(ErrorCodes.OperationNotAllowed, "Control domain does not support hotplug");
        }

        if (vif.SriovNetwork)
        {
            return OperationError.Of(ErrorCodes.OperationNotAllowed, "Network SR-IOV VIF plug/unplug not allowed");
        }

        if (vif.Vm.PowerState != VmPowerState.Running)
        {
            return OperationError.Of(ErrorCodes.VmBadPowerState, vif.Vm.Ref, "running", VmOperationRules.Lower(vif.Vm.PowerState));
        }

        return (vif.Plugged, op) switch
        {
            (true, Plug) => OperationError.Of("DEVICE_ALREADY_ATTACHED", vif.Ref),
            (false, Unplug) => OperationError.Of("DEVICE_ALREADY_DETACHED", vif.Ref),
            _ => Hotplug.VmBusy(vif.Vm) ?? Hotplug.Refusal(vif.Vm, vif.Vm.CanUseHotplugVif, "VIF"),
        };
    }
}
