using Corral.Model;

namespace Corral.Api.Devices;

/// <summary>What a VBD plug/unplug needs to know about the VBD, its VM and its VDI.</summary>
/// <param name="GuestMetrics">The VM's guest metrics, or null when it has none (no guest agent ever spoke).</param>
/// <param name="Vdi">The VBD's VDI, or null when the VBD is empty.</param>
/// <param name="OtherUsers">The other VBDs of that VDI, each with its VM.</param>
public sealed record VbdHotplugContext(
    XenObject Vbd,
    XenObject Vm,
    XenObject? GuestMetrics,
    XenObject? Vdi,
    IReadOnlyList<(XenObject Vbd, XenObject Vm)> OtherUsers);

/// <summary>
/// xapi's checks before a VBD or VIF is plugged into or unplugged from a running VM, in xapi's order (the first that
/// fails is the error). Every Corral VM runs under QEMU, so it is an HVM guest: its devices can come and go only with
/// the guest's drivers' help, which a guest without PV drivers (no guest agent: VM_MISSING_PV_DRIVERS) does not give.
/// </summary>
public static class HotplugRules
{
    public const string Plug = "plug";
    public const string Unplug = "unplug";
    public const string UnplugForce = "unplug_force";

    /// <summary>VM operations during which devices stay as they are.</summary>
    private static readonly string[] BlockingVmOperations = ["clean_shutdown", "hard_shutdown", "suspend", "pause"];

    /// <summary>Null when <paramref name="operation"/> (plug, unplug, unplug_force) may go ahead, else xapi's error.</summary>
    public static XenApiException? CheckVbd(string operation, VbdHotplugContext context)
    {
        var (vbd, vm, metrics, vdi, others) = context;
        var unplugging = operation is Unplug or UnplugForce;
        if (vbd.Get(XenApi.VBD.CurrentOperations).FirstOrDefault() is { Key: { } task, Value: var current })
        {
            return new XenApiException(ErrorCodes.OtherOperationInProgress, XenClasses.VBD, vbd.Ref, XenEnum.ToWire(XenEnumTypes.VbdOperations, current), task);
        }

        if (unplugging && !vbd.Get(XenApi.VBD.Unpluggable))
        {
            return new XenApiException(ErrorCodes.VbdNotUnpluggable, vbd.Ref);
        }

        var isCd = vbd.Get(XenApi.VBD.Type) == VbdType.CD;
        return PowerState(vm, vbd.Get(XenApi.VBD.CurrentlyAttached), vbd.Ref, unplugging)
               ?? (operation == UnplugForce ? null : VmBusy(vm))
               ?? Drivers(vm, metrics, metrics?.Get(XenApi.VMGuestMetrics.CanUseHotplugVbd), "VBD")
               ?? (isCd ? new XenApiException(ErrorCodes.OperationNotAllowed, "HVM CDROMs cannot be hotplugged/unplugged, only inserted or ejected") : null)
               ?? (operation == Plug ? VdiRules(vbd, vdi, others) : null)
               ?? (operation == Plug && !isCd && vbd.Get(XenApi.VBD.Mode) == VbdMode.RO
                   ? new XenApiException(ErrorCodes.DiskVbdMustBeReadwriteForHvm, vbd.Ref)
                   : null);
    }

    /// <summary>Null when a VIF may be plugged (<see cref="Plug"/>) or unplugged (<see cref="Unplug"/>, forced or not), else xapi's error.</summary>
    public static XenApiException? CheckVif(string operation, XenObject vif, XenObject vm, XenObject? metrics)
    {
        var current = vif.Get(XenApi.VIF.CurrentOperations);
        if (current.Count > 0)
        {
            return new XenApiException(ErrorCodes.OtherOperationInProgress, XenClasses.VIF, vif.Ref,
                "{" + string.Join("; ", current.Values.Select(v => XenEnum.ToWire(XenEnumTypes.VifOperations, v))) + "}",
                "{" + string.Join("; ", current.Keys) + "}");
        }

        return PowerState(vm, vif.Get(XenApi.VIF.CurrentlyAttached), vif.Ref, operation != Plug)
               ?? VmBusy(vm)
               ?? Drivers(vm, metrics, metrics?.Get(XenApi.VMGuestMetrics.CanUseHotplugVif), "VIF");
    }

    private static XenApiException? PowerState(XenObject vm, bool attached, string device, bool unplugging)
    {
        var state = vm.Get(XenApi.VM.PowerState);
        if (state != VmPowerState.Running)
        {
            return new XenApiException(ErrorCodes.VmBadPowerState, vm.Ref, "running", XenEnum.ToWire(XenEnumTypes.VmPowerState, state).ToLowerInvariant());
        }

        return attached && !unplugging ? new XenApiException(ErrorCodes.DeviceAlreadyAttached, device)
            : !attached && unplugging ? new XenApiException(ErrorCodes.DeviceAlreadyDetached, device)
            : null;
    }

    private static XenApiException? VmBusy(XenObject vm) =>
        vm.GetStringMap("current_operations").Values.FirstOrDefault(op => BlockingVmOperations.Contains(op)) is { } busy
            ? new XenApiException(ErrorCodes.OperationNotAllowed, $"Current operation on VM:{vm.Ref} is {busy}")
            : null;

    /// <summary>The guest's drivers must be able to take the device: an explicit claim either way wins, else PV drivers suffice.</summary>
    private static XenApiException? Drivers(XenObject vm, XenObject? metrics, TristateType? canHotplug, string deviceClass)
    {
        if (canHotplug == TristateType.Yes)
        {
            return null;
        }

        if (canHotplug == TristateType.No)
        {
            return new XenApiException(ErrorCodes.OperationNotAllowed, $"VM states it does not support {deviceClass} hotplug.");
        }

        return metrics is not null && (metrics.Get(XenApi.VMGuestMetrics.PVDriversDetected) || HasPvDriversVersion(metrics))
            ? null
            : new XenApiException(ErrorCodes.VmMissingPvDrivers, vm.Ref);
    }

    /// <summary>xapi counts a guest as having PV drivers when it reported their major and minor version.</summary>
    private static bool HasPvDriversVersion(XenObject metrics)
    {
        var version = metrics.Get(XenApi.VMGuestMetrics.PVDriversVersion);
        return int.TryParse(version.GetValueOrDefault("major"), out _) && int.TryParse(version.GetValueOrDefault("minor"), out _);
    }

    /// <summary>The VDI must be free for this VBD: no other operation on it, no other writer unless it is sharable, not read-only for a writer.</summary>
    private static XenApiException? VdiRules(XenObject vbd, XenObject? vdi, IReadOnlyList<(XenObject Vbd, XenObject Vm)> others)
    {
        if (vdi is null || vbd.Get(XenApi.VBD.Empty))
        {
            return null;
        }

        if (vdi.Get(XenApi.VDI.CurrentOperations).FirstOrDefault(o => o.Value is not (VdiOperations.Mirror or VdiOperations.Copy)) is { Key: { } task, Value: var op })
        {
            return new XenApiException(ErrorCodes.OtherOperationInProgress, XenClasses.VDI, vdi.Ref, XenEnum.ToWire(XenEnumTypes.VdiOperations, op), task);
        }

        var active = others
            .Where(o => o.Vm.Get(XenApi.VM.PowerState) != VmPowerState.Suspended && !o.Vm.Get(XenApi.VM.IsControlDomain))
            .Where(o => o.Vbd.Get(XenApi.VBD.CurrentlyAttached) || o.Vbd.Get(XenApi.VBD.CurrentOperations).Count > 0)
            .Select(o => o.Vbd)
            .ToList();
        var writes = vbd.Get(XenApi.VBD.Mode) == VbdMode.RW;
        if (!vdi.Get(XenApi.VDI.Sharable) && (active.Any(o => o.Get(XenApi.VBD.Mode) == VbdMode.RW) || (writes && active.Count > 0)))
        {
            return new XenApiException(ErrorCodes.VdiInUse, vdi.Ref);
        }

        return writes && vdi.Get(XenApi.VDI.ReadOnly) ? new XenApiException(ErrorCodes.VdiReadonly, vdi.Ref) : null;
    }
}
