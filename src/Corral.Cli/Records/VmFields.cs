using Corral.Cli.Api;
using Corral.Api.Client;
using Corral.Model;

namespace Corral.Cli.Records;

/// <summary>The parameters of a VM (and of a template), in the order and spelling of xapi's <c>vm_record</c>.</summary>
public static class VmFields
{
    private const string Vm = "VM";
    private const string Metrics = "VM_metrics";
    private const string Guest = "VM_guest_metrics";

    /// <summary>The BIOS strings a user may set (xapi's <c>settable_vm_bios_string_keys</c>).</summary>
    private static readonly string[] SettableBiosStrings =
    [
        "bios-vendor", "bios-version", "system-manufacturer", "system-product-name", "system-version", "system-serial-number",
        "baseboard-manufacturer", "baseboard-product-name", "baseboard-version", "baseboard-serial-number", "baseboard-asset-tag",
        "baseboard-location-in-chassis", "enclosure-asset-tag",
    ];

    public static IReadOnlyList<XeField> Create()
    {
        var b = new FieldBuilder(Vm);
        return
        [
            b.Str("uuid", "uuid"),
            b.Str("name-label", "name_label").Rw(b.SetString("name_label")),
            b.Str("name-description", "name_description").Rw(b.SetString("name_description")),
            b.Int("user-version", "user_version").Rw(b.SetInt("user_version", "user-version")),
            b.Bool("is-a-template", "is_a_template").Rw(b.SetBool("is_a_template", "is-a-template")),
            b.Bool("is-default-template", "is_default_template").Rw(b.SetBool("is_default_template", "is-default-template")),
            b.Bool("is-a-snapshot", "is_a_snapshot"),
            b.RefUuid("snapshot-of", "snapshot_of", Vm),
            b.RefsUuids("snapshots", "snapshots", Vm, readable: false),
            b.Date("snapshot-time", "snapshot_time"),
            b.Str("transportable-snapshot-id", "transportable_snapshot_id").AsHidden(),
            b.Map("snapshot-info", "snapshot_info", readable: false),
            b.RefUuid("parent", "parent", Vm),
            b.RefsUuids("children", "children", Vm, readable: false),
            b.Bool("is-control-domain", "is_control_domain"),
            b.Enum("power-state", "power_state", XeFormat.PowerState),
            b.Related("memory-actual", "metrics", Metrics, "memory_actual", m => XeFormat.Int(m.Long("memory_actual"))),
            b.Call("memory-target", MemoryTargetAsync).AsExpensive(),
            b.Int("memory-overhead", "memory_overhead"),
            b.Int("memory-static-max", "memory_static_max").Rw(b.SetBytes("memory_static_max", "memory-static-max")),
            b.Int("memory-dynamic-max", "memory_dynamic_max").Rw(b.SetBytes("memory_dynamic_max", "memory-dynamic-max")),
            b.Int("memory-dynamic-min", "memory_dynamic_min").Rw(b.SetBytes("memory_dynamic_min", "memory-dynamic-min")),
            b.Int("memory-static-min", "memory_static_min").Rw(b.SetBytes("memory_static_min", "memory-static-min")),
            b.RefUuid("suspend-VDI-uuid", "suspend_VDI", "VDI").Rw(b.SetRef("suspend_VDI", "VDI", emptyIsNull: false)),
            b.RefUuid("suspend-SR-uuid", "suspend_SR", "SR").Rw(b.SetRef("suspend_SR", "SR", emptyIsNull: false)),
            b.Map("VCPUs-params", "VCPUs_params").Rw(b.MapRw("VCPUs_params", key => key is "weight" or "cap" or "mask"
                ? null
                : $"Failed to add parameter '{key}': expecting 'weight','cap' or 'mask'")),
            b.Int("VCPUs-max", "VCPUs_max").Rw(b.SetInt("VCPUs_max", "VCPUs-max")),
            b.Int("VCPUs-at-startup", "VCPUs_at_startup").Rw(b.SetInt("VCPUs_at_startup", "VCPUs-at-startup")),
            b.Enum("actions-after-shutdown", "actions_after_shutdown", XeFormat.OnNormalExit).Rw(b.SetEnum("actions_after_shutdown", XenEnumTypes.OnNormalExit)),
            b.Enum("actions-after-softreboot", "actions_after_softreboot", XeFormat.OnSoftReboot)
                .Rw(b.SetEnum("actions_after_softreboot", XenEnumTypes.OnSoftrebootBehavior)),
            b.Enum("actions-after-reboot", "actions_after_reboot", XeFormat.OnNormalExit).Rw(b.SetEnum("actions_after_reboot", XenEnumTypes.OnNormalExit)),
            b.Enum("actions-after-crash", "actions_after_crash", XeFormat.OnCrash).Rw(b.SetEnum("actions_after_crash", XenEnumTypes.OnCrashBehaviour)),
            b.RefsUuids("console-uuids", "consoles", "console"),
            b.Related("hvm", "metrics", Metrics, "hvm", m => XeFormat.Bool(m.Bool("hvm")), none: "false"),
            b.Related("nomigrate", "metrics", Metrics, "nomigrate", m => XeFormat.Bool(m.Bool("nomigrate")), none: "false").AsHidden(),
            b.Related("nested-virt", "metrics", Metrics, "nested_virt", m => XeFormat.Bool(m.Bool("nested_virt")), none: "false").AsHidden(),
            b.Map("platform", "platform").Rw(b.MapRw("platform")),
            b.Related("numa-optimised", "metrics", Metrics, "numa_optimised", m => XeFormat.Bool(m.Bool("numa_optimised")), none: "false"),
            b.Related("numa-nodes", "metrics", Metrics, "numa_nodes", m => XeFormat.Int(m.Long("numa_nodes")), none: "0"),
            b.Related("numa-node-memory", "metrics", Metrics, "numa_node_memory", m => XeFormat.Map(m.Map("numa_node_memory")), none: "[]")
                .AsMap(c => c.Cache.Find(Metrics, c.Record.Str("metrics"))?.Map("numa_node_memory") ?? []),
            b.Strings("allowed-operations", "allowed_operations", spell: XeFormat.VmOperation),
            b.MapValues("current-operations", "current_operations", XeFormat.VmOperation),
            b.Computed("blocked-operations", c => XeFormat.Map(BlockedOperations(c)), ["blocked_operations"]).AsMap(BlockedOperations)
                .Rw(new MapWriter(
                    (session, self, key, value, ct) => session.CallAsync("VM.add_to_blocked_operations", ct, self, XeValues.ParseVmOperation(key), value),
                    (session, self, key, ct) => session.CallAsync("VM.remove_from_blocked_operations", ct, self, XeValues.ParseVmOperation(key)))),
            b.Call("allowed-VBD-devices", (c, ct) => DevicesAsync(c, "VM.get_allowed_VBD_devices", ct)).AsExpensive().AsSet(_ => []),
            b.Call("allowed-VIF-devices", (c, ct) => DevicesAsync(c, "VM.get_allowed_VIF_devices", ct)).AsExpensive().AsSet(_ => []),
            b.Call("possible-hosts", PossibleHostsAsync).AsExpensive(),
            b.Enum("domain-type", "domain_type", XeFormat.DomainType).Rw(b.SetParsed("domain_type", XeValues.ParseDomainType)),
            b.Related("current-domain-type", "metrics", Metrics, "current_domain_type", m => XeFormat.DomainType(m.Str("current_domain_type"))),
            b.Str("HVM-boot-policy", "HVM_boot_policy").Rw(b.SetString("HVM_boot_policy")),
            b.Map("HVM-boot-params", "HVM_boot_params").Rw(b.MapRw("HVM_boot_params")),
            b.Float("HVM-shadow-multiplier", "HVM_shadow_multiplier").Rw(b.SetFloat("HVM_shadow_multiplier", "HVM-shadow-multiplier")),
            b.Map("NVRAM", "NVRAM").Rw(b.MapRw("NVRAM")).AsHidden(),
            b.Str("PV-kernel", "PV_kernel").Rw(b.SetString("PV_kernel")),
            b.Str("PV-ramdisk", "PV_ramdisk").Rw(b.SetString("PV_ramdisk")),
            b.Str("PV-args", "PV_args").Rw(b.SetString("PV_args")),
            b.Str("PV-legacy-args", "PV_legacy_args").Rw(b.SetString("PV_legacy_args")),
            b.Str("PV-bootloader", "PV_bootloader").Rw(b.SetString("PV_bootloader")),
            b.Str("PV-bootloader-args", "PV_bootloader_args").Rw(b.SetString("PV_bootloader_args")),
            b.Map("last-boot-CPU-flags", "last_boot_CPU_flags", readable: false),
            b.Computed("last-boot-record", c => "'" + c.Record.Str("last_booted_record") + "'", ["last_booted_record"]).AsExpensive(),
            b.RefUuid("resident-on", "resident_on", "host"),
            b.RefUuid("affinity", "affinity", "host").Rw(b.SetRef("affinity", "host")),
            b.Map("other-config", "other_config").Rw(b.MapRw("other_config")),
            b.Int("dom-id", "domid"),
            b.Str("recommendations", "recommendations"),
            b.Map("xenstore-data", "xenstore_data").Rw(b.MapRw("xenstore_data")).Clearable(b.ClearMap("xenstore_data")),
            b.Bool("ha-always-run", "ha_always_run").Rw(b.SetPlainBool("ha_always_run", "ha-always-run")).AsDeprecated(),
            b.Str("ha-restart-priority", "ha_restart_priority").Rw(b.SetString("ha_restart_priority")),
            b.RefMapUuids("blobs", "blobs", "blob"),
            b.Related("start-time", "metrics", Metrics, "start_time", m => XeFormat.Date(m.Raw("start_time")), none: XeFormat.UnknownTime),
            b.Related("install-time", "metrics", Metrics, "install_time", m => XeFormat.Date(m.Raw("install_time")), none: XeFormat.UnknownTime),
            b.Related("VCPUs-number", "metrics", Metrics, "VCPUs_number", m => XeFormat.Int(m.Long("VCPUs_number"))),
            b.Call("VCPUs-utilisation", VcpusUtilisationAsync).AsExpensive().AsMap(_ => []),
            b.RelatedMap("os-version", "guest_metrics", Guest, "os_version"),
            b.RelatedMap("netbios-name", "guest_metrics", Guest, "netbios_name"),
            b.RelatedMap("PV-drivers-version", "guest_metrics", Guest, "PV_drivers_version"),
            b.Related("PV-drivers-up-to-date", "guest_metrics", Guest, "PV_drivers_up_to_date", g => XeFormat.Bool(g.Bool("PV_drivers_up_to_date"))).AsDeprecated(),
            b.RelatedMap("memory", "guest_metrics", Guest, "memory"),
            b.RelatedMap("disks", "guest_metrics", Guest, "disks"),
            b.RefsUuids("VBDs", "VBDs", "VBD"),
            b.RelatedMap("networks", "guest_metrics", Guest, "networks"),
            b.RelatedMap("services", "guest_metrics", Guest, "services"),
            b.Related("PV-drivers-detected", "guest_metrics", Guest, "PV_drivers_detected", g => XeFormat.Bool(g.Bool("PV_drivers_detected"))),
            b.RelatedMap("other", "guest_metrics", Guest, "other"),
            b.Related("live", "guest_metrics", Guest, "live", g => XeFormat.Bool(g.Bool("live"))),
            b.Related("guest-metrics-last-updated", "guest_metrics", Guest, "last_updated", g => XeFormat.Date(g.Raw("last_updated"))),
            b.Related("can-use-hotplug-vbd", "guest_metrics", Guest, "can_use_hotplug_vbd", g => XeFormat.Tristate(g.Str("can_use_hotplug_vbd"))),
            b.Related("can-use-hotplug-vif", "guest_metrics", Guest, "can_use_hotplug_vif", g => XeFormat.Tristate(g.Str("can_use_hotplug_vif"))),
            b.Call("cooperative", CooperativeAsync).AsExpensive().AsDeprecated(),
            b.Strings("tags", "tags", ", ").Rw(b.SetRw("tags")),
            b.RefUuid("appliance", "appliance", "VM_appliance").Rw(b.SetRef("appliance", "VM_appliance")),
            b.RefsUuids("groups", "groups", "VM_group", readable: false).Rw(b.SetRefs("groups", "VM_group")),
            b.Str("secureboot-certificates-state", "secureboot_certificates_state"),
            b.RefUuid("snapshot-schedule", "snapshot_schedule", "VMSS").Rw(b.SetRef("snapshot_schedule", "VMSS")),
            b.Bool("is-vmss-snapshot", "is_vmss_snapshot"),
            b.Int("start-delay", "start_delay").Rw(b.SetInt("start_delay", "start-delay")),
            b.Int("shutdown-delay", "shutdown_delay").Rw(b.SetInt("shutdown_delay", "shutdown-delay")),
            b.Int("order", "order").Rw(b.SetInt("order", "order")),
            b.Int("version", "version"),
            b.Str("generation-id", "generation_id"),
            b.Int("hardware-platform-version", "hardware_platform_version"),
            b.Bool("has-vendor-device", "has_vendor_device").Rw(b.SetBool("has_vendor_device", "has-vendor-device")),
            b.Bool("requires-reboot", "requires_reboot"),
            b.Str("reference-label", "reference_label"),
            b.Map("bios-strings", "bios_strings").Rw(b.ReplaceMap("bios_strings", key => SettableBiosStrings.Contains(key)
                ? null
                : $"Unknown key '{key}': expecting {string.Join(", ", SettableBiosStrings)}")),
            b.Strings("pending-guidances", "pending_guidances", readable: false),
            b.RefsUuids("vtpms", "VTPMs", "VTPM", readable: false),
            b.Strings("pending-guidances-recommended", "pending_guidances_recommended", readable: false),
            b.Strings("pending-guidances-full", "pending_guidances_full", readable: false),
        ];
    }

    /// <summary>blocked-operations: the operations spelled as xe spells them.</summary>
    private static IReadOnlyList<KeyValuePair<string, string>> BlockedOperations(FieldContext c) =>
        c.Record.Map("blocked_operations").Select(kv => new KeyValuePair<string, string>(XeFormat.VmOperation(kv.Key), kv.Value)).ToList();

    /// <summary>xe's <c>get_memory_target</c>: the memory_target data source; 0 when the VM is not running.</summary>
    private static async Task<string?> MemoryTargetAsync(FieldContext c, CancellationToken ct)
    {
        if (c.Session is null)
        {
            return null;
        }

        try
        {
            var value = await c.Session.CallAsync("VM.query_data_source", ct, c.Record.Ref, "memory_target");
            return XeFormat.Int((long)XenValue.AsDouble(value));
        }
        catch (XenApiException ex) when (ex.Code == ErrorCodes.VmBadPowerState)
        {
            return "0";
        }
        catch (XenApiException ex) when (!XeField.IsUnoffered(ex))
        {
            return "<unknown>";
        }
    }

    /// <summary>allowed-VBD-devices / allowed-VIF-devices: xe shows nothing when the call fails.</summary>
    private static async Task<string?> DevicesAsync(FieldContext c, string method, CancellationToken ct)
    {
        if (c.Session is null)
        {
            return null;
        }

        try
        {
            return XeFormat.Set(XenValue.AsStrings(await c.Session.CallAsync(method, ct, c.Record.Ref)));
        }
        catch (XenApiException ex) when (!XeField.IsUnoffered(ex))
        {
            return "";
        }
    }

    private static async Task<string?> PossibleHostsAsync(FieldContext c, CancellationToken ct)
    {
        if (c.Session is null)
        {
            return null;
        }

        var hosts = await c.Session.CallAsync("VM.get_possible_hosts", ct, c.Record.Ref);
        await c.Cache.AllAsync("host", ct);
        return FieldBuilder.Uuids(c.Cache, "host", hosts);
    }

    /// <summary>The cpuN data sources, one per VCPU; nothing when they cannot be read.</summary>
    private static async Task<string?> VcpusUtilisationAsync(FieldContext c, CancellationToken ct)
    {
        if (c.Session is null)
        {
            return null;
        }

        var count = c.Cache.Find(Metrics, c.Record.Str("metrics"))?.Long("VCPUs_number") ?? 0;
        var parts = new List<string>();
        try
        {
            for (var n = 0; n < count; n++)
            {
                var value = await c.Session.CallAsync("VM.query_data_source", ct, c.Record.Ref, $"cpu{n}");
                parts.Add($"{n}: {XeFormat.Float(XenValue.AsDouble(value))}");
            }
        }
        catch (XenApiException ex) when (!XeField.IsUnoffered(ex))
        {
            return "";
        }

        return string.Join("; ", parts);
    }

    private static async Task<string?> CooperativeAsync(FieldContext c, CancellationToken ct)
    {
        if (c.Session is null)
        {
            return null;
        }

        try
        {
            return XeFormat.Bool(XenValue.AsBool(await c.Session.CallAsync("VM.get_cooperative", ct, c.Record.Ref)));
        }
        catch (XenApiException ex) when (!XeField.IsUnoffered(ex))
        {
            return "true";
        }
    }
}
