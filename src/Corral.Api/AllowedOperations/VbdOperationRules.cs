using Corral.Model;
using static Corral.Model.VbdOperations;

namespace Corral.Api.AllowedOperations;

/// <summary>
/// Which operations a VBD allows, as xapi decides them (xapi_vbd_helpers: the first error recorded for an operation
/// wins). xapi's sharing checks of the VDI are made only when an operation is called, never for the list; so here.
/// </summary>
public static class VbdOperationRules
{
    public static readonly IReadOnlyList<VbdOperations> Candidates = Enum.GetValues<VbdOperations>();

    public static IReadOnlyList<VbdOperations> Allowed(VbdFacts vbd, ImplementedOperations implemented) =>
        Candidates.Where(op => implemented.Has(op) && Check(vbd, op) is null).ToList();

    public static OperationError? Check(VbdFacts vbd, VbdOperations op) =>
        Concurrency(vbd, op) ?? Device(vbd, op) ?? PowerState(vbd, op) ?? Guest(vbd, op) ?? Disk(vbd, op);

    private static OperationError InProgressError(VbdFacts vbd, KeyValuePair<string, VbdOperations> current) =>
        OperationError.Of(ErrorCodes.OtherOperationInProgress, XenClasses.VBD, vbd.Ref, Wire(current.Value), current.Key);

    private static OperationError? Concurrency(VbdFacts vbd, VbdOperations op)
    {
        var current = vbd.CurrentOperations;
        if (current.IsEmpty)
        {
            return null;
        }

        // pause and unpause may run beside each other; unpause also beside the attach of a reboot.
        var blocking = op switch
        {
            Pause => current.First(o => o is not (Pause or Unpause)),
            Unpause => current.First(o => o is not (Attach or Pause or Unpause)),
            _ => current.Entries[0],
        };
        return blocking is { } entry ? InProgressError(vbd, entry) : null;
    }

    private static OperationError? Device(VbdFacts vbd, VbdOperations op)
    {
        if (!vbd.Unpluggable && op is Unplug or UnplugForce)
        {
            return OperationError.Of("VBD_NOT_UNPLUGGABLE", vbd.Ref);
        }

        if (vbd.Type != VbdType.CD && op is Insert or Eject)
        {
            return OperationError.Of(ErrorCodes.VbdNotRemovableMedia, vbd.Ref);
        }

        return (vbd.Empty, op) switch
        {
            (true, Eject) => OperationError.Of(ErrorCodes.VbdIsEmpty, vbd.Ref),
            (false, Insert) => OperationError.Of(ErrorCodes.VbdNotEmpty, vbd.Ref),
            _ => null,
        };
    }

    private static OperationError? PowerState(VbdFacts vbd, VbdOperations op)
    {
        var state = vbd.Vm.PowerState;
        if (state == VmPowerState.Running)
        {
            return (vbd.Plugged, op) switch
            {
                (true, Plug) => OperationError.Of("DEVICE_ALREADY_ATTACHED", vbd.Ref),
                (false, Unplug or UnplugForce) => OperationError.Of("DEVICE_ALREADY_DETACHED", vbd.Ref),
                _ => null,
            };
        }

        // A paused VM's disks may still be paused and unpaused.
        return op is Plug or Unplug or UnplugForce || (op is Pause or Unpause && state != VmPowerState.Paused)
            ? OperationError.Of(ErrorCodes.VmBadPowerState, vbd.Vm.Ref, "running", VmOperationRules.Lower(state))
            : null;
    }

    private static OperationError? Guest(VbdFacts vbd, VbdOperations op)
    {
        if (op is Plug or Unplug && Hotplug.VmBusy(vbd.Vm) is { } busy)
        {
            return busy;
        }

        if (op is Plug or Unplug or UnplugForce && vbd.Vm.PowerState == VmPowerState.Running && vbd.Vm.IsHvm)
        {
            if (Hotplug.Refusal(vbd.Vm, vbd.Vm.CanUseHotplugVbd, "VBD") is { } refusal)
            {
                return refusal;
            }

            if (vbd.Type == VbdType.CD)
            {
                return OperationError.Of(ErrorCodes.OperationNotAllowed, "HVM CDROMs cannot be hotplugged/unplugged, only inserted or ejected");
            }
        }

        return vbd.Type == VbdType.CD && vbd.Vm.PowerState == VmPowerState.Suspended && op is Insert or Eject
            ? OperationError.Of(ErrorCodes.VmBadPowerState, vbd.Vm.Ref, "halted, running", "suspended")
            : null;
    }

    private static OperationError? Disk(VbdFacts vbd, VbdOperations op)
    {
        if (vbd.Empty || vbd.Vdi is null)
        {
            return null;
        }

        if (!vbd.VdiManaged)
        {
            return OperationError.Of("VDI_NOT_MANAGED", vbd.Ref);
        }

        return op is Attach or Plug or Insert && vbd.VdiCurrentOperations.First(o => o is not (VdiOperations.Mirror or VdiOperations.Copy)) is { } held
            ? OperationError.Of(ErrorCodes.OtherOperationInProgress, XenClasses.VDI, vbd.Vdi, XenEnum.ToWire(XenEnumTypes.VdiOperations, held.Value), held.Key)
            : null;
    }

    private static string Wire(VbdOperations op) => XenEnum.ToWire(XenEnumTypes.VbdOperations, op);
}
