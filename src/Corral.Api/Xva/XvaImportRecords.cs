using System.Globalization;
using System.Security.Cryptography;
using Corral.Api.Methods;
using Corral.Model;
using Corral.Networking;
using Corral.PoolDatabase;

namespace Corral.Api.Xva;

/// <summary>
/// The records an import creates from an export's objects, field by field as xapi's import.ml changes them: references
/// re-pointed at what this import made (or matched), uuids new unless restoring, runtime state reset.
/// </summary>
public static class XvaImportRecords
{
    /// <summary>VM fields never taken from an export: references (re-pointed by the import) and runtime state.</summary>
    private static readonly HashSet<string> VmRuntime =
    [
        "uuid", "current_operations", "allowed_operations", "power_state", "domid", "domarch", "is_control_domain",
        "snapshot_metadata", "attached_PCIs", "is_default_template", "pending_guidances", "pending_guidances_recommended", "pending_guidances_full",
    ];

    /// <summary>The export's record for <paramref name="schema"/>: fields this pool knows, in its types; references and <paramref name="skip"/> left out.</summary>
    public static Dictionary<string, object?> Fields(ClassSchema schema, IDictionary<string, object?> snapshot, IReadOnlySet<string> skip)
    {
        ArgumentNullException.ThrowIfNull(schema);
        ArgumentNullException.ThrowIfNull(snapshot);
        var fields = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (name, value) in snapshot)
        {
            if (skip.Contains(name) || schema.Find(name) is not { } field
                || field.Type is FieldType.RefTo or FieldType.SetOf { Element: FieldType.RefTo } or FieldType.MapOf { Value: FieldType.RefTo })
            {
                continue;
            }

            try
            {
                fields[name] = field.Type.Coerce(value);
            }
            catch (Exception ex) when (ex is FormatException or InvalidCastException or ArgumentException or XenApiException)
            {
                // A value this pool's type cannot hold (an enum value of a newer xapi): the field keeps its default.
            }
        }

        return fields;
    }

    /// <summary>The new VM (halted, its own metrics), as import.ml's VM handler makes it.</summary>
    public static XenObject CreateVm(PoolTransaction tx, IDictionary<string, object?> snapshot, bool restore, string taskRef)
    {
        ArgumentNullException.ThrowIfNull(tx);
        var metrics = tx.Create(XenClasses.VMMetricsSchema);
        metrics.Set(XenApi.VMMetrics.InstallTime, DateTime.UtcNow);
        var vm = tx.Create(XenClasses.VMSchema, Fields(XenClasses.VMSchema, snapshot, VmRuntime));
        if (restore && snapshot.TryGetValue("uuid", out var uuid) && uuid is string u && OpaqueRef.IsUuid(u))
        {
            vm.Set(XenApi.VM.Uuid, u);
        }

        vm.Set(XenApi.VM.PowerState, VmPowerState.Halted);
        vm.Set(XenApi.VM.Domid, -1L);
        vm.Set(XenApi.VM.Metrics, metrics.Ref);
        var other = vm.Get(XenApi.VM.OtherConfig).Where(kv => kv.Key is not ("grant_api_access" or "import_task" or "default_template"))
            .ToDictionary(kv => kv.Key, kv => kv.Value);
        if (!restore)
        {
            // A fresh MAC seed: the imported VM is another machine than the one exported (unless restoring it).
            other["mac_seed"] = Guid.NewGuid().ToString();
        }

        other["import_task"] = taskRef;
        vm.Set(XenApi.VM.OtherConfig, other);
        vm.Set(XenApi.VM.Version, restore ? vm.Get(XenApi.VM.Version) + 1 : 0);
        if (!vm.Get(XenApi.VM.IsATemplate) && vm.Get(XenApi.VM.GenerationId).Length > 0)
        {
            // A new VM generation id, so that the guest knows it is a copy (templates keep theirs: never started).
            vm.Set(XenApi.VM.GenerationId, string.Create(CultureInfo.InvariantCulture, $"{RandomInt64()}:{RandomInt64()}"));
        }

        return vm;
    }

    /// <summary>A VDI record for an imported volume in <paramref name="srRef"/>, its metadata from the export.</summary>
    public static XenObject CreateVdi(PoolTransaction tx, IDictionary<string, object?> snapshot, string srRef, string uuid, string location, long virtualSize,
        long physicalUtilisation)
    {
        ArgumentNullException.ThrowIfNull(tx);
        var taken = Fields(XenClasses.VDISchema, snapshot, new HashSet<string>(StringComparer.Ordinal));
        var vdi = tx.Create(XenClasses.VDISchema);
        foreach (var field in new[] { "name_label", "name_description", "type", "sharable", "read_only", "other_config", "xenstore_data", "on_boot", "allow_caching", "tags" })
        {
            if (taken.TryGetValue(field, out var value))
            {
                vdi[field] = value;
            }
        }

        vdi.Set(XenApi.VDI.Uuid, uuid);
        vdi.Set(XenApi.VDI.SR, srRef);
        vdi.Set(XenApi.VDI.Location, location);
        vdi.Set(XenApi.VDI.VirtualSize, virtualSize);
        vdi.Set(XenApi.VDI.PhysicalUtilisation, physicalUtilisation);
        vdi.Set(XenApi.VDI.Managed, true);
        return vdi;
    }

    /// <summary>A VBD of the new VM, detached, its device chosen again at start (xapi clears it).</summary>
    public static XenObject CreateVbd(PoolTransaction tx, IDictionary<string, object?> snapshot, string vmRef, string? vdiRef, string? uuid)
    {
        ArgumentNullException.ThrowIfNull(tx);
        var vbd = tx.Create(XenClasses.VBDSchema, Fields(XenClasses.VBDSchema, snapshot, new HashSet<string>(["uuid", "current_operations", "allowed_operations", "currently_attached", "device", "status_code", "status_detail"], StringComparer.Ordinal)));
        if (uuid is not null)
        {
            vbd.Set(XenApi.VBD.Uuid, uuid);
        }

        vbd.Set(XenApi.VBD.VM, vmRef);
        vbd.Set(XenApi.VBD.VDI, vdiRef ?? OpaqueRef.Null);
        vbd.Set(XenApi.VBD.Empty, vdiRef is null);
        vbd.Set(XenApi.VBD.CurrentlyAttached, false);
        return vbd;
    }

    /// <summary>A VIF of the new VM on <paramref name="networkRef"/>; a new MAC unless restoring (xapi blanks it, to be made anew).</summary>
    public static XenObject CreateVif(PoolTransaction tx, IDictionary<string, object?> snapshot, string vmRef, string networkRef, bool restore, string? uuid)
    {
        ArgumentNullException.ThrowIfNull(tx);
        var vif = tx.Create(XenClasses.VIFSchema, Fields(XenClasses.VIFSchema, snapshot, new HashSet<string>(["uuid", "current_operations", "allowed_operations", "currently_attached", "status_code", "status_detail"], StringComparer.Ordinal)));
        if (uuid is not null)
        {
            vif.Set(XenApi.VIF.Uuid, uuid);
        }

        vif.Set(XenApi.VIF.VM, vmRef);
        vif.Set(XenApi.VIF.Network, networkRef);
        vif.Set(XenApi.VIF.CurrentlyAttached, false);
        if (!restore || !MacAddress.IsValid(vif.Get(XenApi.VIF.MAC)))
        {
            vif.Set(XenApi.VIF.MAC, MacAddress.NewRandom());
            vif.Set(XenApi.VIF.MACAutogenerated, true);
        }

        return vif;
    }

    /// <summary>A network for an exported one no network here matches (xapi creates it), on its bridge if free, else a new one.</summary>
    public static XenObject CreateNetwork(PoolTransaction tx, IDictionary<string, object?> snapshot, IReadOnlyCollection<XenObject> existing, string taskRef)
    {
        ArgumentNullException.ThrowIfNull(tx);
        var taken = Fields(XenClasses.NetworkSchema, snapshot, new HashSet<string>(StringComparer.Ordinal));
        var network = tx.Create(XenClasses.NetworkSchema);
        foreach (var field in new[] { "name_label", "name_description", "MTU", "other_config", "tags" })
        {
            if (taken.TryGetValue(field, out var value))
            {
                network[field] = value;
            }
        }

        var bridges = existing.Select(n => n.Get(XenApi.Network.Bridge)).ToHashSet(StringComparer.Ordinal);
        var bridge = taken.GetValueOrDefault("bridge") as string ?? "";
        if (bridge.Length == 0 || bridges.Contains(bridge) || !ValidBridge(bridge))
        {
            bridge = Enumerable.Range(0, 1000).Select(i => $"corral{i}").First(b => !bridges.Contains(b));
        }

        network.Set(XenApi.Network.Bridge, bridge);
        network.Set(XenApi.Network.OtherConfig, new Dictionary<string, string>(network.Get(XenApi.Network.OtherConfig)) { ["import_task"] = taskRef });
        return network;
    }

    /// <summary>The VTPM of the new VM with the exported TPM's contents in a secret of its own.</summary>
    public static XenObject CreateVtpm(PoolTransaction tx, IDictionary<string, object?> snapshot, string vmRef, bool restore)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        var contents = Text(snapshot, XvaVtpm.ContentKey);
        if (contents.Length > 0 && !IsBase64(contents))
        {
            throw new XenApiException(ErrorCodes.ImportErrorGeneric, "The VTPM's contents are not base64-encoded");
        }

        var vtpm = VtpmRecords.Create(tx, vmRef, Flag(snapshot, XvaVtpm.IsUniqueKey), contents);
        vtpm.Set(XenApi.VTPM.IsProtected, Flag(snapshot, XvaVtpm.IsProtectedKey));
        if (restore && OpaqueRef.IsUuid(Text(snapshot, XvaVtpm.UuidKey)))
        {
            vtpm.Set(XenApi.VTPM.Uuid, Text(snapshot, XvaVtpm.UuidKey));
        }

        return vtpm;
    }

    public static string Text(IDictionary<string, object?> snapshot, string key) =>
        snapshot.TryGetValue(key, out var v) && v is not null ? Convert.ToString(v, CultureInfo.InvariantCulture) ?? "" : "";

    private static bool Flag(IDictionary<string, object?> snapshot, string key) =>
        snapshot.TryGetValue(key, out var v) && v is true or "true" or "1" or 1L;

    private static bool IsBase64(string text) => Convert.TryFromBase64String(text, new byte[text.Length], out _);

    private static bool ValidBridge(string bridge)
    {
        try
        {
            BridgeNetworking.ValidateName(bridge);
            return true;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    private static long RandomInt64() => RandomNumberGenerator.GetInt32(int.MaxValue) * (long)int.MaxValue + RandomNumberGenerator.GetInt32(int.MaxValue);
}
