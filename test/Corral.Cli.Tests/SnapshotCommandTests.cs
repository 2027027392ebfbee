namespace Corral.Cli.Tests;

/// <summary>xe's snapshot commands: the XenAPI calls they make (xapi's cli_operations) and what they print.</summary>
public class SnapshotCommandTests
{
    private static CannedPool Pool()
    {
        var pool = CannedPool.Standard();
        pool.Add("VM", "OpaqueRef:snap", new()
        {
            ["uuid"] = "sn-1", ["name_label"] = "before upgrade", ["name_description"] = "", ["power_state"] = "Halted", ["is_a_template"] = true,
            ["is_a_snapshot"] = true, ["snapshot_of"] = "OpaqueRef:vm1", ["snapshot_time"] = "20261205T16:00:00Z", ["is_control_domain"] = false,
            ["VBDs"] = new List<object?>(), ["VIFs"] = new List<object?>(),
        });
        return pool.Answer("VM.snapshot", "OpaqueRef:new").Answer("VM.snapshot_with_quiesce", "OpaqueRef:new").Answer("VM.revert")
            .Answer("VM.destroy").Answer("VM.set_name_description").Answer("VDI.snapshot", "OpaqueRef:vdisnap")
            .Answer("VM.get_uuid", "new-uuid").Answer("VDI.get_uuid", "vdisnap-uuid");
    }

    [Fact]
    public async Task Vm_snapshot_snapshots_the_vm_selected_describes_it_and_prints_its_uuid()
    {
        var pool = Pool();
        var (code, output, err) = await pool.RunAsync("vm-snapshot", "vm=web", "new-name-label=s1", "new-name-description=before", "ignore-vdi-uuids=d-1");
        Assert.Equal((0, "new-uuid\n", ""), (code, output, err));
        Assert.Contains("VDI.get_by_uuid(d-1)", pool.CallLog);
        Assert.Contains("VM.snapshot(OpaqueRef:vm1, s1, [OpaqueRef:vdi1])", pool.CallLog);
        Assert.Contains("VM.set_name_description(OpaqueRef:new, before)", pool.CallLog);

        (code, output, _) = await pool.RunAsync("vm-snapshot-with-quiesce", "uuid=v-1", "new-name-label=q");
        Assert.Equal((0, "new-uuid\n"), (code, output));
        Assert.Contains("VM.snapshot_with_quiesce(OpaqueRef:vm1, q)", pool.CallLog);
    }

    [Fact]
    public async Task Snapshot_commands_take_snapshot_uuid_or_uuid_and_refuse_a_vm_that_is_not_a_snapshot()
    {
        var pool = Pool();
        Assert.Equal((0, "", ""), await pool.RunAsync("snapshot-revert", "snapshot-uuid=sn-1"));
        Assert.Equal(["VM.get_by_uuid(sn-1)", "VM.get_is_a_snapshot(OpaqueRef:snap)", "VM.revert(OpaqueRef:snap)"], pool.CallLog);

        Assert.Equal((0, "", ""), await pool.RunAsync("snapshot-destroy", "uuid=sn-1"));
        Assert.Equal("VM.destroy(OpaqueRef:snap)", pool.CallLog.Last());

        var (code, _, err) = await pool.RunAsync("snapshot-revert", "uuid=v-1");
        Assert.Equal((1, "Error: This operation can only be performed on a VM snapshot. v-1 is not a VM snapshot.\n"), (code, err));
        (code, _, err) = await pool.RunAsync("snapshot-revert");
        Assert.Equal((1, "Error: Required parameter not found: snapshot-uuid or uuid.\n"), (code, err));
        Assert.DoesNotContain("VM.revert(OpaqueRef:vm1)", pool.CallLog);
    }

    [Fact]
    public async Task Vdi_snapshot_prints_the_new_vdis_uuid()
    {
        var pool = Pool();
        Assert.Equal((0, "vdisnap-uuid\n", ""), await pool.RunAsync("vdi-snapshot", "uuid=d-1", "driver-params:k=v"));
        Assert.Contains("VDI.snapshot(OpaqueRef:vdi1, {k:v})", pool.CallLog);
    }

    [Fact]
    public async Task Vm_list_hides_snapshots_and_snapshot_list_shows_them()
    {
        var pool = Pool();
        var (_, vms, _) = await pool.RunAsync("vm-list");
        Assert.DoesNotContain("sn-1", vms, StringComparison.Ordinal);
        Assert.Contains("v-1", vms, StringComparison.Ordinal);
        var (code, snapshots, _) = await pool.RunAsync("snapshot-list");
        Assert.Equal(0, code);
        Assert.Contains("sn-1", snapshots, StringComparison.Ordinal);
        Assert.Contains("before upgrade", snapshots, StringComparison.Ordinal);
        Assert.DoesNotContain("v-1", snapshots, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Snapshot_uninstall_destroys_the_snapshot_and_the_disks_it_owns_after_confirmation()
    {
        var pool = Pool();
        pool.Add("VBD", "OpaqueRef:sv", new()
        {
            ["uuid"] = "sv-1", ["VM"] = "OpaqueRef:snap", ["VDI"] = "OpaqueRef:vdi1", ["userdevice"] = "0", ["type"] = "Disk",
            ["other_config"] = new Dictionary<string, object?> { ["owner"] = "" },
        });
        pool.Handlers["VM.get_VBDs"] = p => (string)p[1]! == "OpaqueRef:snap" ? new List<object?> { "OpaqueRef:sv" } : new List<object?>();
        pool.Answer("VDI.destroy");
        pool.Handlers["VDI.get_uuid"] = p => (string)p[1]! == "OpaqueRef:vdi1" ? "d-1" : throw new Corral.Model.XenApiException("HANDLE_INVALID", "VDI", (string)p[1]!);
        var (code, output, err) = await pool.RunAsync("snapshot-uninstall", "snapshot-uuid=sn-1", "--force");
        Assert.True(code == 0, err);
        Assert.Contains("VM : sn-1 (before upgrade)", output, StringComparison.Ordinal);
        Assert.Contains("VDI: d-1 (web disk)", output, StringComparison.Ordinal);
        Assert.Contains("All objects destroyed", output, StringComparison.Ordinal);
        var log = pool.CallLog.ToList();
        Assert.True(log.IndexOf("VM.destroy(OpaqueRef:snap)") < log.IndexOf("VDI.destroy(OpaqueRef:vdi1)"));
    }

    [Fact]
    public async Task Template_uninstall_destroys_a_template_and_the_disks_it_owns_and_refuses_a_vm_that_is_not_one()
    {
        var pool = Pool();
        pool.Add("VM", "OpaqueRef:tpl", new()
        {
            ["uuid"] = "tpl-1", ["name_label"] = "golden", ["name_description"] = "", ["power_state"] = "Halted", ["is_a_template"] = true,
            ["is_a_snapshot"] = false, ["is_control_domain"] = false, ["VBDs"] = new List<object?> { "OpaqueRef:tv" }, ["VIFs"] = new List<object?>(),
        });
        pool.Add("VBD", "OpaqueRef:tv", new()
        {
            ["uuid"] = "tv-1", ["VM"] = "OpaqueRef:tpl", ["VDI"] = "OpaqueRef:vdi1", ["userdevice"] = "0", ["type"] = "Disk",
            ["other_config"] = new Dictionary<string, object?> { ["owner"] = "" },
        });
        pool.Handlers["VM.get_VBDs"] = p => (string)p[1]! == "OpaqueRef:tpl" ? new List<object?> { "OpaqueRef:tv" } : new List<object?>();
        pool.Answer("VDI.destroy");
        pool.Handlers["VDI.get_uuid"] = p => (string)p[1]! == "OpaqueRef:vdi1" ? "d-1" : throw new Corral.Model.XenApiException("HANDLE_INVALID", "VDI", (string)p[1]!);

        var (code, _, err) = await pool.RunAsync("template-uninstall", "template-uuid=v-1", "--force");
        Assert.NotEqual(0, code);
        Assert.Contains("v-1 is not a VM template", err, StringComparison.Ordinal);
        Assert.DoesNotContain("VM.destroy(OpaqueRef:vm1)", pool.CallLog);

        (code, var output, err) = await pool.RunAsync("template-uninstall", "template-uuid=tpl-1", "--force");
        Assert.True(code == 0, err);
        Assert.Contains("VM : tpl-1 (golden)", output, StringComparison.Ordinal);
        Assert.Contains("VDI: d-1 (web disk)", output, StringComparison.Ordinal);
        var log = pool.CallLog.ToList();
        Assert.True(log.IndexOf("VM.destroy(OpaqueRef:tpl)") < log.IndexOf("VDI.destroy(OpaqueRef:vdi1)"));
    }
}
