using Corral.Api.Devices;
using Corral.Model;
using Xunit;

namespace Corral.UnitTests.Devices;

/// <summary>xapi's checks before a VBD or VIF is plugged or unplugged, first failure wins.</summary>
public sealed class HotplugRulesTests
{
    private static XenObject Vm(string power = "Running", Dictionary<string, object?>? operations = null) =>
        new(XenClasses.VMSchema, "OpaqueRef:vm", new Dictionary<string, object?>
        {
            ["uuid"] = "4b0c3a8e-0000-4000-8000-000000000001",
            ["power_state"] = power,
            ["current_operations"] = operations ?? new Dictionary<string, object?>(),
        });

    private static XenObject Vbd(bool attached = false, string type = "Disk", string mode = "RW", bool unpluggable = true, string reference = "OpaqueRef:vbd") =>
        new(XenClasses.VBDSchema, reference, new Dictionary<string, object?>
        {
            ["VM"] = "OpaqueRef:vm",
            ["VDI"] = "OpaqueRef:vdi",
            ["currently_attached"] = attached,
            ["type"] = type,
            ["mode"] = mode,
            ["unpluggable"] = unpluggable,
        });

    private static XenObject Vif(bool attached = false) =>
        new(XenClasses.VIFSchema, "OpaqueRef:vif", new Dictionary<string, object?> { ["VM"] = "OpaqueRef:vm", ["currently_attached"] = attached });

    /// <summary>What Corral's guest agent reports for a guest with the virtio drivers.</summary>
    private static XenObject Drivers(string canHotplug = "yes") =>
        new(XenClasses.VMGuestMetricsSchema, "OpaqueRef:gm", new Dictionary<string, object?>
        {
            ["PV_drivers_detected"] = true,
            ["PV_drivers_version"] = new Dictionary<string, object?> { ["major"] = "1", ["minor"] = "0" },
            ["can_use_hotplug_vbd"] = canHotplug,
            ["can_use_hotplug_vif"] = canHotplug,
        });

    private static XenObject Vdi(bool sharable = false, bool readOnly = false) =>
        new(XenClasses.VDISchema, "OpaqueRef:vdi", new Dictionary<string, object?> { ["sharable"] = sharable, ["read_only"] = readOnly });

    private static string[] Check(string operation, XenObject vbd, XenObject vm, XenObject? metrics, XenObject? vdi = null,
        IReadOnlyList<(XenObject, XenObject)>? others = null) =>
        HotplugRules.CheckVbd(operation, new VbdHotplugContext(vbd, vm, metrics, vdi ?? Vdi(), others ?? []))?.ErrorDescription.ToArray() ?? [];

    [Fact]
    public void A_running_guest_with_drivers_takes_a_disk_and_gives_it_back()
    {
        Assert.Empty(Check(HotplugRules.Plug, Vbd(), Vm(), Drivers()));
        Assert.Empty(Check(HotplugRules.Unplug, Vbd(attached: true), Vm(), Drivers()));
        Assert.Empty(Check(HotplugRules.UnplugForce, Vbd(attached: true), Vm(), Drivers("unspecified")));
    }

    [Fact]
    public void Devices_come_and_go_only_while_the_vm_runs()
    {
        Assert.Equal([ErrorCodes.VmBadPowerState, "OpaqueRef:vm", "running", "halted"], Check(HotplugRules.Plug, Vbd(), Vm("Halted"), null));
        Assert.Equal([ErrorCodes.VmBadPowerState, "OpaqueRef:vm", "running", "paused"], Check(HotplugRules.Unplug, Vbd(attached: true), Vm("Paused"), Drivers()));
        Assert.Equal([ErrorCodes.DeviceAlreadyAttached, "OpaqueRef:vbd"], Check(HotplugRules.Plug, Vbd(attached: true), Vm(), Drivers()));
        Assert.Equal([ErrorCodes.DeviceAlreadyDetached, "OpaqueRef:vbd"], Check(HotplugRules.UnplugForce, Vbd(), Vm(), Drivers()));
        Assert.Equal([ErrorCodes.VmBadPowerState, "OpaqueRef:vm", "running", "halted"], CheckVif(HotplugRules.Plug, Vif(), Vm("Halted"), null));
        Assert.Equal([ErrorCodes.DeviceAlreadyDetached, "OpaqueRef:vif"], CheckVif(HotplugRules.Unplug, Vif(), Vm(), Drivers()));
    }

    [Fact]
    public void A_guest_without_pv_drivers_cannot_take_or_give_back_devices()
    {
        // The no-tools guest: emulated devices, no guest agent, so no guest metrics.
        Assert.Equal([ErrorCodes.VmMissingPvDrivers, "OpaqueRef:vm"], Check(HotplugRules.Plug, Vbd(), Vm(), null));
        Assert.Equal([ErrorCodes.VmMissingPvDrivers, "OpaqueRef:vm"], Check(HotplugRules.UnplugForce, Vbd(attached: true), Vm(), null));
        Assert.Equal([ErrorCodes.VmMissingPvDrivers, "OpaqueRef:vm"], CheckVif(HotplugRules.Plug, Vif(), Vm(), null));
        Assert.Equal([ErrorCodes.VmMissingPvDrivers, "OpaqueRef:vm"], CheckVif(HotplugRules.UnplugForce, Vif(attached: true), Vm(), null));

        // A guest that says it cannot is believed, drivers or not.
        Assert.Equal([ErrorCodes.OperationNotAllowed, "VM states it does not support VBD hotplug."], Check(HotplugRules.Plug, Vbd(), Vm(), Drivers("no")));
        Assert.Equal([ErrorCodes.OperationNotAllowed, "VM states it does not support VIF hotplug."], CheckVif(HotplugRules.Plug, Vif(), Vm(), Drivers("no")));
    }

    [Fact]
    public void Cds_and_disks_marked_not_unpluggable_stay()
    {
        Assert.Equal([ErrorCodes.OperationNotAllowed, "HVM CDROMs cannot be hotplugged/unplugged, only inserted or ejected"],
            Check(HotplugRules.Plug, Vbd(type: "CD", mode: "RO"), Vm(), Drivers()));
        Assert.Equal([ErrorCodes.VbdNotUnpluggable, "OpaqueRef:vbd"], Check(HotplugRules.Unplug, Vbd(attached: true, unpluggable: false), Vm(), Drivers()));
        Assert.Empty(Check(HotplugRules.Plug, Vbd(unpluggable: false), Vm(), Drivers()));
        Assert.Equal([ErrorCodes.DiskVbdMustBeReadwriteForHvm, "OpaqueRef:vbd"], Check(HotplugRules.Plug, Vbd(mode: "RO"), Vm(), Drivers()));
    }

    [Fact]
    public void A_shutdown_in_progress_holds_plug_and_unplug_but_not_a_forced_unplug()
    {
        var stopping = Vm(operations: new Dictionary<string, object?> { ["OpaqueRef:task"] = "clean_shutdown" });
        var expected = new[] { ErrorCodes.OperationNotAllowed, "Current operation on VM:OpaqueRef:vm is clean_shutdown" };
        Assert.Equal(expected, Check(HotplugRules.Plug, Vbd(), stopping, Drivers()));
        Assert.Equal(expected, Check(HotplugRules.Unplug, Vbd(attached: true), stopping, Drivers()));
        Assert.Empty(Check(HotplugRules.UnplugForce, Vbd(attached: true), stopping, Drivers()));
        Assert.Equal(expected, CheckVif(HotplugRules.Plug, Vif(), stopping, Drivers()));
    }

    [Fact]
    public void A_disk_another_running_vm_writes_to_is_not_plugged_unless_it_is_sharable()
    {
        var otherVm = Vm();
        var writer = Vbd(attached: true, reference: "OpaqueRef:other");
        Assert.Equal([ErrorCodes.VdiInUse, "OpaqueRef:vdi"], Check(HotplugRules.Plug, Vbd(), Vm(), Drivers(), Vdi(), [(writer, otherVm)]));
        Assert.Empty(Check(HotplugRules.Plug, Vbd(), Vm(), Drivers(), Vdi(sharable: true), [(writer, otherVm)]));
        // One that is not attached anywhere does not count.
        Assert.Empty(Check(HotplugRules.Plug, Vbd(), Vm(), Drivers(), Vdi(), [(Vbd(reference: "OpaqueRef:idle"), Vm("Halted"))]));
        Assert.Equal([ErrorCodes.VdiReadonly, "OpaqueRef:vdi"], Check(HotplugRules.Plug, Vbd(), Vm(), Drivers(), Vdi(readOnly: true)));
    }

    [Fact]
    public void An_operation_already_running_on_the_device_is_named()
    {
        var busy = Vbd();
        busy["current_operations"] = new Dictionary<string, object?> { ["OpaqueRef:t1"] = "plug" };
        Assert.Equal([ErrorCodes.OtherOperationInProgress, "VBD", "OpaqueRef:vbd", "plug", "OpaqueRef:t1"], Check(HotplugRules.Plug, busy, Vm(), Drivers()));
    }

    private static string[] CheckVif(string operation, XenObject vif, XenObject vm, XenObject? metrics) =>
        HotplugRules.CheckVif(operation, vif, vm, metrics)?.ErrorDescription.ToArray() ?? [];
}
