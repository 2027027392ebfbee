using Corral.Model;
using Corral.PoolDatabase;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>
/// VBD and VIF records and their plug/unplug over a real etcd, as xapi answers: devices made in any power state (a
/// running VM's new ones unplugged), the free device numbers, and the refusals before anything reaches the VM's host.
/// </summary>
public sealed class DeviceApiTests(AgentFixture pool) : IClassFixture<AgentFixture>
{
    private async Task<(string Vm, string Vdi, string Network)> VmAsync(string power, bool drivers)
    {
        var tx = new PoolTransaction();
        var sr = tx.Create(XenClasses.SRSchema, new Dictionary<string, object?> { ["name_label"] = "records", ["type"] = "file" });
        var vdi = tx.Create(XenClasses.VDISchema, new Dictionary<string, object?> { ["SR"] = sr.Ref, ["virtual_size"] = 1L << 30, ["managed"] = true });
        var network = tx.Create(XenClasses.NetworkSchema, new Dictionary<string, object?> { ["name_label"] = "net", ["bridge"] = "xenbr9", ["MTU"] = 1500L });
        var fields = new Dictionary<string, object?>
        {
            ["name_label"] = "vm",
            ["power_state"] = power,
            ["resident_on"] = power == "Halted" ? OpaqueRef.Null : pool.Host.Ref,
        };
        if (drivers)
        {
            fields["guest_metrics"] = tx.Create(XenClasses.VMGuestMetricsSchema, new Dictionary<string, object?>
            {
                ["PV_drivers_detected"] = true, ["can_use_hotplug_vbd"] = "yes", ["can_use_hotplug_vif"] = "yes",
            }).Ref;
        }

        var vm = tx.Create(XenClasses.VMSchema, fields);
        tx.Create(XenClasses.VBDSchema, new Dictionary<string, object?>
        {
            ["VM"] = vm.Ref, ["VDI"] = vdi.Ref, ["userdevice"] = "0", ["device"] = "hda", ["currently_attached"] = power != "Halted",
        });
        await pool.Database.CommitAsync(tx, default);
        return (vm.Ref, vdi.Ref, network.Ref);
    }

    private static Dictionary<string, object?> VbdRecord(string vm, string vdi, string userdevice) => new()
    {
        ["VM"] = vm, ["VDI"] = vdi, ["userdevice"] = userdevice, ["bootable"] = false, ["mode"] = "RW", ["type"] = "Disk", ["empty"] = false,
        ["unpluggable"] = true, ["other_config"] = new Dictionary<string, object?>(),
    };

    [Fact]
    public async Task A_running_vm_gets_new_devices_unplugged_and_the_free_device_numbers_follow()
    {
        var (vm, _, network) = await VmAsync("Running", drivers: true);
        var allowed = ((List<object?>)(await pool.S("VM.get_allowed_VBD_devices", vm))!).Cast<string>().ToList();
        Assert.Equal(["1", "2", "3", "4"], allowed.Take(4)); // 0 is taken (userdevice 0, and hda)
        var vdi = await OtherVdiAsync();
        var vbd = (string)(await pool.S("VBD.create", VbdRecord(vm, vdi, "autodetect")))!;
        Assert.Equal("1", await pool.S("VBD.get_userdevice", vbd));
        Assert.False((bool)(await pool.S("VBD.get_currently_attached", vbd))!);
        Assert.Equal([ErrorCodes.DeviceAlreadyExists, "1"], (await pool.Fails("VBD.create", VbdRecord(vm, vdi, "1"))).ErrorDescription);
        Assert.Equal([ErrorCodes.DeviceAlreadyExists, "hdb"], (await pool.Fails("VBD.create", VbdRecord(vm, vdi, "hdb"))).ErrorDescription);
        Assert.Equal("5", await pool.S("VBD.get_userdevice", (string)(await pool.S("VBD.create", VbdRecord(vm, vdi, "xvdf")))!));
        Assert.Equal([ErrorCodes.InvalidDevice, "sideways"], (await pool.Fails("VBD.create", VbdRecord(vm, vdi, "sideways"))).ErrorDescription);
        Assert.DoesNotContain("1", ((List<object?>)(await pool.S("VM.get_allowed_VBD_devices", vm))!).Cast<string>());

        var vif = (string)(await pool.S("VIF.create", new Dictionary<string, object?> { ["VM"] = vm, ["network"] = network, ["device"] = "2", ["MAC"] = "" }))!;
        Assert.False((bool)(await pool.S("VIF.get_currently_attached", vif))!);
        Assert.Equal(["0", "1", "3"], ((List<object?>)(await pool.S("VM.get_allowed_VIF_devices", vm))!).Cast<string>().Take(3));
        Assert.Equal([ErrorCodes.DeviceAlreadyExists, "2"],
            (await pool.Fails("VIF.create", new Dictionary<string, object?> { ["VM"] = vm, ["network"] = network, ["device"] = "2", ["MAC"] = "" })).ErrorDescription);
        Assert.Equal([ErrorCodes.InvalidDevice, "eth1"],
            (await pool.Fails("VIF.create", new Dictionary<string, object?> { ["VM"] = vm, ["network"] = network, ["device"] = "eth1", ["MAC"] = "" })).ErrorDescription);
        Assert.Equal([ErrorCodes.MacInvalid, "02:00:00"],
            (await pool.Fails("VIF.create", new Dictionary<string, object?> { ["VM"] = vm, ["network"] = network, ["device"] = "3", ["MAC"] = "02:00:00" })).ErrorDescription);

        // The checks pass and the plug goes to the VM's host, whose agent finds no QEMU for this VM of records only.
        var plug = await pool.Fails("VBD.plug", vbd);
        Assert.Equal(ErrorCodes.InternalError, plug.Code);
        Assert.Contains("not resident on this host", plug.Parameters[0], StringComparison.Ordinal);
        Assert.Equal([ErrorCodes.DeviceAlreadyDetached, vbd], (await pool.Fails("VBD.unplug", vbd)).ErrorDescription);
        Assert.Equal(ErrorCodes.InternalError, (await pool.Fails("VIF.plug", vif)).Code);
    }

    [Fact]
    public async Task Devices_of_halted_vms_and_of_guests_without_drivers_are_not_plugged()
    {
        var (halted, _, network) = await VmAsync("Halted", drivers: false);
        var vbd = (string)(await pool.S("VBD.create", VbdRecord(halted, await OtherVdiAsync(), "2")))!;
        Assert.Equal([ErrorCodes.VmBadPowerState, halted, "running", "halted"], (await pool.Fails("VBD.plug", vbd)).ErrorDescription);
        Assert.Equal([ErrorCodes.VmBadPowerState, halted, "running", "halted"], (await pool.Fails("VBD.unplug_force", vbd)).ErrorDescription);
        await pool.S("VBD.set_mode", vbd, "RO");
        await pool.S("VBD.destroy", vbd);

        var (bare, _, _) = await VmAsync("Running", drivers: false);
        var vif = (string)(await pool.S("VIF.create", new Dictionary<string, object?> { ["VM"] = bare, ["network"] = network, ["device"] = "0", ["MAC"] = "" }))!;
        Assert.Equal([ErrorCodes.VmMissingPvDrivers, bare], (await pool.Fails("VIF.plug", vif)).ErrorDescription);
        var root = (string)((List<object?>)(await pool.S("VM.get_VBDs", bare))!).Single()!;
        Assert.Equal([ErrorCodes.VmMissingPvDrivers, bare], (await pool.Fails("VBD.unplug", root)).ErrorDescription);
        Assert.Equal(ErrorCodes.OperationNotAllowed, (await pool.Fails("VBD.destroy", root)).Code);
        Assert.Equal([ErrorCodes.VmBadPowerState, bare, "halted", "running"], (await pool.Fails("VBD.set_mode", root, "RO")).ErrorDescription);
        Assert.Equal("0", await pool.S("VIF.get_device", vif));
    }

    private async Task<string> OtherVdiAsync()
    {
        var tx = new PoolTransaction();
        var sr = tx.Create(XenClasses.SRSchema, new Dictionary<string, object?> { ["name_label"] = "records", ["type"] = "file" });
        var vdi = tx.Create(XenClasses.VDISchema, new Dictionary<string, object?> { ["SR"] = sr.Ref, ["virtual_size"] = 1L << 30, ["managed"] = true });
        await pool.Database.CommitAsync(tx, default);
        return vdi.Ref;
    }
}
