using Corral.Api.AllowedOperations;
using Corral.Model;
using Xunit;
using static Corral.Model.VbdOperations;

namespace Corral.UnitTests.AllowedOperations;

/// <summary>VBD and VIF rules against xapi's (research: allowed-ops.md §2, §5).</summary>
public sealed class DeviceOperationRulesTests
{
    private const string VmRef = "OpaqueRef:vm";

    private static DeviceVmFacts Vm(VmPowerState state = VmPowerState.Halted) => new() { Ref = VmRef, PowerState = state };

    /// <summary>A running HVM guest whose drivers claim disk and network hot-plug.</summary>
    private static DeviceVmFacts HotplugVm() => Vm(VmPowerState.Running) with
    {
        HasGuestMetrics = true, HasPvDrivers = true, CanUseHotplugVbd = TristateType.Yes, CanUseHotplugVif = TristateType.Yes,
    };

    private static VbdFacts Disk(DeviceVmFacts vm) => new() { Ref = "OpaqueRef:vbd", Vm = vm, Vdi = "OpaqueRef:vdi" };

    private static VbdFacts Cd(DeviceVmFacts vm, bool empty) => new() { Ref = "OpaqueRef:cd", Vm = vm, Type = VbdType.CD, Empty = empty, Vdi = empty ? null : "OpaqueRef:iso" };

    private static IReadOnlyList<VbdOperations> Allowed(VbdFacts vbd) => VbdOperationRules.Allowed(vbd, ImplementedOperations.Everything);

    [Fact]
    public void Typical_vbd_lists()
    {
        Assert.Equal([Attach], Allowed(Disk(Vm())));
        Assert.Equal([Attach, Insert], Allowed(Cd(Vm(), empty: true)));
        Assert.Equal([Attach, Eject], Allowed(Cd(Vm(), empty: false)));
        Assert.Equal([Attach, Unplug, UnplugForce, Pause, Unpause], Allowed(Disk(HotplugVm()) with { Plugged = true }));
        Assert.Equal([Attach, Plug, Pause, Unpause], Allowed(Disk(HotplugVm())));
        Assert.Equal([Attach, Eject, Pause, Unpause], Allowed(Cd(HotplugVm(), empty: false) with { Plugged = true }));
        Assert.Equal([Attach, Pause, Unpause], Allowed(Disk(Vm(VmPowerState.Paused)) with { Plugged = true }));
        Assert.Equal([Attach], Allowed(Cd(Vm(VmPowerState.Suspended), empty: false)));
    }

    [Fact]
    public void A_running_hvm_guest_without_drivers_cannot_hot_plug()
    {
        var vbd = Disk(Vm(VmPowerState.Running));
        Assert.Equal([ErrorCodes.VmMissingPvDrivers, VmRef], VbdOperationRules.Check(vbd, Plug)!.ToException().ErrorDescription);
        var refusing = Disk(HotplugVm() with { CanUseHotplugVbd = TristateType.No });
        Assert.Equal([ErrorCodes.OperationNotAllowed, "VM states it does not support VBD hotplug."], VbdOperationRules.Check(refusing, Plug)!.ToException().ErrorDescription);
        var detected = Disk(Vm(VmPowerState.Running) with { HasGuestMetrics = true, PvDriversDetected = true });
        Assert.Null(VbdOperationRules.Check(detected, Plug));
        Assert.Equal("HVM CDROMs cannot be hotplugged/unplugged, only inserted or ejected", VbdOperationRules.Check(Cd(HotplugVm(), false), Plug)!.Parameters[0]);
    }

    [Fact]
    public void Device_and_power_state_errors()
    {
        var vbd = Disk(HotplugVm()) with { Plugged = true };
        Assert.Equal(["DEVICE_ALREADY_ATTACHED", "OpaqueRef:vbd"], VbdOperationRules.Check(vbd, Plug)!.ToException().ErrorDescription);
        Assert.Equal("DEVICE_ALREADY_DETACHED", VbdOperationRules.Check(vbd with { Plugged = false }, Unplug)!.Code);
        Assert.Equal([ErrorCodes.VmBadPowerState, VmRef, "running", "halted"], VbdOperationRules.Check(Disk(Vm()), Plug)!.ToException().ErrorDescription);
        Assert.Equal("VBD_NOT_UNPLUGGABLE", VbdOperationRules.Check(vbd with { Unpluggable = false }, Unplug)!.Code);
        Assert.Equal(ErrorCodes.VbdNotRemovableMedia, VbdOperationRules.Check(vbd, Insert)!.Code);
        Assert.Equal(ErrorCodes.VbdIsEmpty, VbdOperationRules.Check(Cd(Vm(), true), Eject)!.Code);
        Assert.Equal(ErrorCodes.VbdNotEmpty, VbdOperationRules.Check(Cd(Vm(), false), Insert)!.Code);
        Assert.Equal([ErrorCodes.VmBadPowerState, VmRef, "halted, running", "suspended"], VbdOperationRules.Check(Cd(Vm(VmPowerState.Suspended), false), Eject)!.ToException().ErrorDescription);
    }

    [Fact]
    public void Operations_in_progress_on_the_vbd_its_vm_and_its_vdi()
    {
        var attaching = Disk(HotplugVm()) with { CurrentOperations = InProgress.Of(("OpaqueRef:t", Attach)) };
        Assert.Equal([Unpause], Allowed(attaching));
        Assert.Equal([ErrorCodes.OtherOperationInProgress, "VBD", "OpaqueRef:vbd", "attach", "OpaqueRef:t"], VbdOperationRules.Check(attaching, Plug)!.ToException().ErrorDescription);
        var pausing = Disk(HotplugVm()) with { CurrentOperations = InProgress.Of(("OpaqueRef:t", Pause)) };
        Assert.Equal([Pause, Unpause], Allowed(pausing));
        var unplugging = Disk(HotplugVm()) with { CurrentOperations = InProgress.Of(("OpaqueRef:t", Unplug)) };
        Assert.Empty(Allowed(unplugging));

        var vmShuttingDown = Disk(HotplugVm() with { CurrentOperations = InProgress.Of(("OpaqueRef:s", VmOperations.CleanShutdown)) });
        Assert.Equal([ErrorCodes.OperationNotAllowed, "Current operation on VM:OpaqueRef:vm is clean_shutdown"], VbdOperationRules.Check(vmShuttingDown, Plug)!.ToException().ErrorDescription);
        Assert.Null(VbdOperationRules.Check(vmShuttingDown with { Plugged = true }, UnplugForce));

        var vdiBusy = Disk(Vm()) with { VdiCurrentOperations = InProgress.Of(("OpaqueRef:r", VdiOperations.Resize)) };
        Assert.Equal([ErrorCodes.OtherOperationInProgress, "VDI", "OpaqueRef:vdi", "resize", "OpaqueRef:r"], VbdOperationRules.Check(vdiBusy, Attach)!.ToException().ErrorDescription);
        Assert.Null(VbdOperationRules.Check(Disk(Vm()) with { VdiCurrentOperations = InProgress.Of(("OpaqueRef:c", VdiOperations.Copy)) }, Attach));
        Assert.Equal(["VDI_NOT_MANAGED", "OpaqueRef:vbd"], VbdOperationRules.Check(Disk(Vm()) with { VdiManaged = false }, Attach)!.ToException().ErrorDescription);
    }

    [Fact]
    public void Only_what_corral_implements_is_listed_for_a_vbd()
    {
        // Corral attaches disks when it starts a VM and changes CDs; it does not hot-plug.
        var corral = new ImplementedOperations(name => name is "VM.start" or "VBD.insert" or "VBD.eject");
        Assert.Equal([Attach, Eject], VbdOperationRules.Allowed(Cd(HotplugVm(), false) with { Plugged = true }, corral));
        Assert.Equal([Attach], VbdOperationRules.Allowed(Disk(HotplugVm()), corral));
    }

    private static VifFacts Vif(DeviceVmFacts vm, bool plugged = false) => new() { Ref = "OpaqueRef:vif", Vm = vm, Plugged = plugged };

    [Fact]
    public void Typical_vif_lists()
    {
        var all = ImplementedOperations.Everything;
        Assert.Equal([VifOperations.Attach], VifOperationRules.Allowed(Vif(Vm()), all));
        Assert.Equal([VifOperations.Attach, VifOperations.Unplug], VifOperationRules.Allowed(Vif(HotplugVm(), plugged: true), all));
        Assert.Equal([VifOperations.Attach, VifOperations.Plug], VifOperationRules.Allowed(Vif(HotplugVm()), all));
        Assert.Equal([VifOperations.Attach], VifOperationRules.Allowed(Vif(HotplugVm()) with { SriovNetwork = true }, all));
        Assert.Equal([VifOperations.Attach], VifOperationRules.Allowed(Vif(HotplugVm() with { CanUseHotplugVif = TristateType.No }), all));
        Assert.Equal([VifOperations.Attach], VifOperationRules.Allowed(Vif(HotplugVm() with { IsDomainZero = true }), all));
    }

    [Fact]
    public void Vif_errors_name_every_operation_in_progress_newest_first()
    {
        var vif = Vif(HotplugVm()) with { CurrentOperations = InProgress.Of(("OpaqueRef:a", VifOperations.Attach), ("OpaqueRef:b", VifOperations.Plug)) };
        Assert.Equal([ErrorCodes.OtherOperationInProgress, "VIF", "OpaqueRef:vif", "{plug; attach}", "{OpaqueRef:b; OpaqueRef:a}"],
            VifOperationRules.Check(vif, VifOperations.Attach)!.ToException().ErrorDescription);
        Assert.Equal([ErrorCodes.VmBadPowerState, VmRef, "running", "paused"], VifOperationRules.Check(Vif(Vm(VmPowerState.Paused)), VifOperations.Plug)!.ToException().ErrorDescription);
        Assert.Equal([ErrorCodes.OperationNotAllowed, "Control domain does not support hotplug"],
            VifOperationRules.Check(Vif(HotplugVm() with { IsDomainZero = true }), VifOperations.Plug)!.ToException().ErrorDescription);
        Assert.Equal("VM states it does not support VIF hotplug.", VifOperationRules.Check(Vif(HotplugVm() with { CanUseHotplugVif = TristateType.No }), VifOperations.Plug)!.Parameters[0]);
    }
}
