using Corral.Model;

namespace Corral.Api.AllowedOperations;

/// <summary>What the VBD and VIF rules read about the VM a device belongs to.</summary>
public sealed record DeviceVmFacts
{
    public required string Ref { get; init; }

    public VmPowerState PowerState { get; init; } = VmPowerState.Halted;

    public InProgress<VmOperations> CurrentOperations { get; init; } = InProgress.None<VmOperations>();

    /// <summary>The VM's domain type is <c>hvm</c> (every QEMU guest of Corral's).</summary>
    public bool IsHvm { get; init; } = true;

    public bool IsDomainZero { get; init; }

    public bool HasGuestMetrics { get; init; }

    public TristateType CanUseHotplugVbd { get; init; } = TristateType.Unspecified;

    public TristateType CanUseHotplugVif { get; init; } = TristateType.Unspecified;

    public bool PvDriversDetected { get; init; }

    public bool HasPvDrivers { get; init; }
}

/// <summary>Everything the VBD rules read: the VBD, its VM and its VDI.</summary>
public sealed record VbdFacts
{
    public required string Ref { get; init; }

    public required DeviceVmFacts Vm { get; init; }

    public VbdType Type { get; init; } = VbdType.Disk;

    public bool Empty { get; init; }

    public bool Unpluggable { get; init; } = true;

    /// <summary><c>currently_attached</c> (xapi also counts its internal <c>reserved</c> flag, which Corral has not).</summary>
    public bool Plugged { get; init; }

    public InProgress<VbdOperations> CurrentOperations { get; init; } = InProgress.None<VbdOperations>();

    /// <summary>The VDI, when the VBD is not empty.</summary>
    public string? Vdi { get; init; }

    public bool VdiManaged { get; init; } = true;

    public InProgress<VdiOperations> VdiCurrentOperations { get; init; } = InProgress.None<VdiOperations>();
}

/// <summary>Everything the VIF rules read: the VIF, its VM and its network.</summary>
public sealed record VifFacts
{
    public required string Ref { get; init; }

    public required DeviceVmFacts Vm { get; init; }

    public bool Plugged { get; init; }

    public InProgress<VifOperations> CurrentOperations { get; init; } = InProgress.None<VifOperations>();

    /// <summary>The VIF's network is an SR-IOV network.</summary>
    public bool SriovNetwork { get; init; }
}

/// <summary>The hot-plug rule VBDs and VIFs share (xapi: a running HVM guest needs drivers that support it).</summary>
internal static class Hotplug
{
    public static OperationError? Refusal(DeviceVmFacts vm, TristateType canUseHotplug, string device)
    {
        if (vm.PowerState != VmPowerState.Running || !vm.IsHvm)
        {
            return null;
        }

        var missingDrivers = vm.HasPvDrivers ? null : OperationError.Of(ErrorCodes.VmMissingPvDrivers, vm.Ref);
        if (!vm.HasGuestMetrics)
        {
            return missingDrivers;
        }

        return canUseHotplug switch
        {
            TristateType.Yes => null,
            TristateType.No => OperationError.Of(ErrorCodes.OperationNotAllowed, $"VM states it does not support {device} hotplug."),
            _ => vm.PvDriversDetected ? null : missingDrivers,
        };
    }

    /// <summary>xapi refuses plug and unplug while the VM shuts down, suspends or pauses.</summary>
    public static OperationError? VmBusy(DeviceVmFacts vm) =>
        vm.CurrentOperations.First(o => o is VmOperations.CleanShutdown or VmOperations.HardShutdown or VmOperations.Suspend or VmOperations.Pause) is { } busy
            ? OperationError.Of(ErrorCodes.OperationNotAllowed, $"Current operation on VM:{vm.Ref} is {VmOperationRules.Display(busy.Value)}")
            : null;
}
