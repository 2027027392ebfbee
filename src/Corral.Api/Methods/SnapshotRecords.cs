using System.Text.Json.Nodes;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Api.Methods;

/// <summary>
/// The records of VM snapshots and of their reverts, as xapi's VM.snapshot and VM.revert leave them. They are written
/// in one transaction once every disk's copy is complete, so that a snapshot is whole or absent.
/// </summary>
public static class SnapshotRecords
{
    /// <summary>VM fields a snapshot does not take from its VM: its identity, its devices (copied as records), runtime state.</summary>
    private static readonly HashSet<string> NotTaken =
    [
        "uuid", "VBDs", "VIFs", "VTPMs", "VUSBs", "VGPUs", "consoles", "crash_dumps", "snapshots", "children", "resident_on",
        "scheduled_to_be_resident_on", "current_operations", "allowed_operations", "guest_metrics", "metrics", "domid",
        "is_default_template", "attached_PCIs", "snapshot_metadata",
    ];

    /// <summary>VM fields a revert leaves as they are (xapi's list for a snapshot that carries its VM's metadata).</summary>
    private static readonly HashSet<string> NotReverted =
    [
        "uuid", "suspend_VDI", "power_state", "parent", "current_operations", "allowed_operations", "metrics", "guest_metrics",
        "resident_on", "domid", "protection_policy", "snapshot_schedule", "scheduled_to_be_resident_on", "snapshots", "tags",
        "affinity", "groups", "consoles", "VBDs", "VIFs", "VGPUs", "VUSBs", "VTPMs", "attached_PCIs", "is_snapshot_from_vmpp",
        "crash_dumps", "children", "is_a_snapshot", "snapshot_of", "snapshot_time", "snapshot_info", "snapshot_metadata",
        "transportable_snapshot_id", "is_default_template",
    ];

    /// <summary>xapi's snapshot_info keys.</summary>
    public const string DiskSnapshotType = "disk-snapshot-type";

    public const string PowerStateAtSnapshot = "power-state-at-snapshot";

    /// <summary>
    /// The snapshot's VM record (halted, a template, <c>snapshot_of</c> the VM) with its metrics; the VM's record as it
    /// is now goes into <c>snapshot_metadata</c>, which a revert restores from.
    /// </summary>
    public static XenObject CreateVm(PoolTransaction tx, XenObject vm, string uuid, string name, bool quiesced, DateTime now)
    {
        var fields = vm.ToRecord();
        foreach (var field in NotTaken)
        {
            fields.Remove(field);
        }

        var metrics = tx.Create(XenClasses.VMMetricsSchema);
        metrics.Set(XenApi.VMMetrics.InstallTime, now);
        var snapshot = tx.Create(XenClasses.VMSchema, fields);
        snapshot.Set(XenApi.VM.Uuid, uuid);
        snapshot.Set(XenApi.VM.NameLabel, name);
        snapshot.Set(XenApi.VM.PowerState, VmPowerState.Halted);
        snapshot.Set(XenApi.VM.IsATemplate, true);
        snapshot.Set(XenApi.VM.IsASnapshot, true);
        snapshot.Set(XenApi.VM.SnapshotOf, vm.Ref);
        snapshot.Set(XenApi.VM.SnapshotTime, now);
        snapshot.Set(XenApi.VM.TransportableSnapshotId, "");
        snapshot.Set(XenApi.VM.Parent, vm.Get(XenApi.VM.Parent));
        snapshot.Set(XenApi.VM.HaAlwaysRun, false);
        snapshot.Set(XenApi.VM.Domid, -1L);
        snapshot.Set(XenApi.VM.Metrics, metrics.Ref);
        snapshot.Set(XenApi.VM.SnapshotInfo, new Dictionary<string, string>
        {
            [DiskSnapshotType] = quiesced ? "quiesced" : "crash_consistent",
            [PowerStateAtSnapshot] = vm.Get(XenApi.VM.PowerState).ToString(),
        });
        snapshot.Set(XenApi.VM.SnapshotMetadata, Metadata(vm));
        snapshot.Set(XenApi.VM.OtherConfig, vm.Get(XenApi.VM.OtherConfig)
            .Where(kv => kv.Key is not ("default_template" or "xensource_internal")).ToDictionary());
        return snapshot;
    }

    /// <summary>A new volume's VDI record, its metadata from <paramref name="source"/> (xapi's VDI.snapshot and VDI.clone keep these).</summary>
    public static XenObject CreateVdi(PoolTransaction tx, XenObject source, string uuid, string location, long virtualSize, long physicalUtilisation,
        bool isSnapshot, DateTime now)
    {
        var vdi = tx.Create(XenClasses.VDISchema);
        vdi.Set(XenApi.VDI.Uuid, uuid);
        vdi.Set(XenApi.VDI.SR, source.Get(XenApi.VDI.SR));
        vdi.Set(XenApi.VDI.Location, location);
        vdi.Set(XenApi.VDI.VirtualSize, virtualSize);
        vdi.Set(XenApi.VDI.PhysicalUtilisation, physicalUtilisation);
        vdi.Set(XenApi.VDI.Managed, true);
        foreach (var field in new[] { "name_label", "name_description", "type", "sharable", "other_config", "xenstore_data", "on_boot", "allow_caching", "tags" })
        {
            vdi[field] = source[field];
        }

        if (isSnapshot)
        {
            vdi.Set(XenApi.VDI.IsASnapshot, true);
            vdi.Set(XenApi.VDI.SnapshotOf, source.Ref);
            vdi.Set(XenApi.VDI.SnapshotTime, now);
        }

        return vdi;
    }

    /// <summary>A copy of a VBD for another VM, detached, onto <paramref name="vdiRef"/>.</summary>
    public static XenObject CopyVbd(PoolTransaction tx, XenObject vbd, string vmRef, string vdiRef, bool owned)
    {
        var fields = vbd.ToRecord();
        fields.Remove("uuid");
        var copy = tx.Create(XenClasses.VBDSchema, fields);
        copy.Set(XenApi.VBD.VM, vmRef);
        copy.Set(XenApi.VBD.VDI, vdiRef);
        copy.Set(XenApi.VBD.CurrentlyAttached, false);
        copy.Set(XenApi.VBD.CurrentOperations, new Dictionary<string, VbdOperations>());
        if (owned)
        {
            // xapi's owner key: the snapshot owns its disk copies, so uninstalling it removes them (CA-58405).
            var other = new Dictionary<string, string>(vbd.Get(XenApi.VBD.OtherConfig));
            other.TryAdd("owner", "");
            copy.Set(XenApi.VBD.OtherConfig, other);
        }

        return copy;
    }

    /// <summary>A copy of a VIF for another VM, detached, with the same MAC (snapshots and reverts keep it).</summary>
    public static XenObject CopyVif(PoolTransaction tx, XenObject vif, string vmRef)
    {
        var fields = vif.ToRecord();
        fields.Remove("uuid");
        var copy = tx.Create(XenClasses.VIFSchema, fields);
        copy.Set(XenApi.VIF.VM, vmRef);
        copy.Set(XenApi.VIF.CurrentlyAttached, false);
        copy.Set(XenApi.VIF.CurrentOperations, new Dictionary<string, VifOperations>());
        return copy;
    }

    /// <summary>
    /// The VM's fields as the snapshot recorded them (its <c>snapshot_metadata</c>; the snapshot's own record for one
    /// without), except what a revert leaves: devices (replaced as records), runtime state, the snapshot tree.
    /// </summary>
    public static void RevertFields(XenObject vm, XenObject snapshot)
    {
        var recorded = FromMetadata(snapshot.Get(XenApi.VM.SnapshotMetadata));
        var fields = recorded ?? snapshot.ToRecord();
        var skip = recorded is null ? NotReverted.Concat(["name_label", "is_a_template"]).ToHashSet() : NotReverted;
        foreach (var (name, value) in fields)
        {
            if (!skip.Contains(name) && vm.Schema.Find(name) is not null)
            {
                vm[name] = value;
            }
        }

        vm.Set(XenApi.VM.HaAlwaysRun, false);
        vm.Set(XenApi.VM.Parent, snapshot.Ref);
        vm.Set(XenApi.VM.PowerState, VmPowerState.Halted);
    }

    /// <summary>The VM's stored fields as JSON, in each field's wire form.</summary>
    private static string Metadata(XenObject vm)
    {
        var json = new JsonObject();
        foreach (var field in vm.Schema.Fields)
        {
            if (!NotTaken.Contains(field.Name) || field.Name is "uuid")
            {
                json[field.Name] = field.Type.ToJson(vm[field.Name]);
            }
        }

        return json.ToJsonString();
    }

    private static Dictionary<string, object?>? FromMetadata(string metadata)
    {
        if (string.IsNullOrEmpty(metadata) || JsonNode.Parse(metadata) is not JsonObject json)
        {
            return null;
        }

        var fields = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var field in XenClasses.VMSchema.Fields)
        {
            if (json.TryGetPropertyValue(field.Name, out var node))
            {
                fields[field.Name] = field.Type.FromJson(node);
            }
        }

        return fields;
    }
}
