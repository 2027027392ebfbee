using static Corral.Model.FieldAccess;

namespace Corral.Model;

/// <summary>
/// The XenAPI classes a Corral pool stores, with XenAPI's field names and types. Fields Corral does not act on are
/// still present with XenAPI's defaults, so that clients written for XenServer find every field they read.
/// </summary>
public static class XenClasses
{
    public const string Pool = "pool";
    public const string Host = "host";
    public const string HostMetrics = "host_metrics";
    public const string VM = "VM";
    public const string VMMetrics = "VM_metrics";
    public const string VMGuestMetrics = "VM_guest_metrics";
    public const string SR = "SR";
    public const string PBD = "PBD";
    public const string VDI = "VDI";
    public const string VBD = "VBD";
    public const string Network = "network";
    public const string VIF = "VIF";
    public const string PIF = "PIF";
    public const string Task = "task";
    public const string Message = "message";
    public const string Session = "session";
    public const string Console = "console";

    public static readonly FieldType PowerState = FieldType.Enum("vm_power_state", "Halted", "Paused", "Running", "Suspended");
    public static readonly FieldType TaskStatus = FieldType.Enum("task_status_type", "pending", "success", "failure", "cancelling", "cancelled");
    public static readonly FieldType VbdType = FieldType.Enum("vbd_type", "Disk", "CD", "Floppy");
    public static readonly FieldType VbdMode = FieldType.Enum("vbd_mode", "RW", "RO");
    public static readonly FieldType VdiType = FieldType.Enum("vdi_type", "user", "system", "ephemeral", "suspend", "crashdump", "ha_statefile", "metadata", "redo_log", "rrd", "pvs_cache", "cbt_metadata");
    public static readonly FieldType OnNormalExit = FieldType.Enum("on_normal_exit", "destroy", "restart");
    public static readonly FieldType OnCrashBehaviour = FieldType.Enum("on_crash_behaviour", "restart", "destroy", "preserve", "coredump_and_restart", "coredump_and_destroy", "rename_restart");
    public static readonly FieldType IpConfigurationMode = FieldType.Enum("ip_configuration_mode", "None", "DHCP", "Static");
    public static readonly FieldType MessageClass = FieldType.Enum("cls", "VM", "Host", "SR", "Pool", "VMPP", "VMSS", "PVS_proxy", "VDI", "Certificate");
    public static readonly FieldType DomainType = FieldType.Enum("domain_type", "hvm", "pv", "pv_in_pvh", "pvh", "unspecified");
    public static readonly FieldType ConsoleProtocol = FieldType.Enum("console_protocol", "vt100", "rfb", "rdp");
    public static readonly FieldType Tristate = FieldType.Enum("tristate_type", "unspecified", "yes", "no");
    public static readonly FieldType OperationsSet = FieldType.StringSet;
    public static readonly FieldType OperationsMap = FieldType.StringMap;

    private static FieldSchema F(string name, FieldType type, FieldAccess access = RO, object? def = null) => new(name, type, access, def);

    private static FieldSchema Str(string name, FieldAccess access = RO, string? def = null) => new(name, FieldType.String, access, def);

    private static FieldSchema Int(string name, FieldAccess access = RO, long? def = null) => new(name, FieldType.Int, access, def);

    private static FieldSchema Bool(string name, FieldAccess access = RO, bool? def = null) => new(name, FieldType.Bool, access, def);

    private static FieldSchema Map(string name, FieldAccess access = RO) => new(name, FieldType.StringMap, access);

    private static FieldSchema Ref(string name, string cls, FieldAccess access = RO) => new(name, FieldType.Ref(cls), access);

    private static FieldSchema Refs(string name, string cls) => new(name, FieldType.RefSet(cls), RO);

    private static FieldSchema Time(string name) => new(name, FieldType.DateTime, RO);

    private static IEnumerable<FieldSchema> Names() => [Str("name_label", RW), Str("name_description", RW)];

    private static IEnumerable<FieldSchema> Operations() => [F("allowed_operations", OperationsSet), F("current_operations", OperationsMap)];

    public static readonly ClassSchema PoolSchema = new(Pool,
    [
        .. Names(), Ref("master", Host), Ref("default_SR", SR, RW), Ref("suspend_image_SR", SR, RW), Ref("crash_dump_SR", SR, RW),
        Map("other_config", RW), Bool("ha_enabled"), Map("ha_configuration"), F("ha_statefiles", FieldType.StringSet),
        Int("ha_host_failures_to_tolerate"), Int("ha_plan_exists_for"), Bool("ha_allow_overcommit", RW), Bool("ha_overcommitted"),
        Map("blobs"), F("tags", FieldType.StringSet, RW), Map("gui_config", RW), Map("health_check_config", RW),
        Str("wlb_url"), Str("wlb_username"), Bool("wlb_enabled", RW), Bool("wlb_verify_cert", RW), Bool("redo_log_enabled"),
        Ref("redo_log_vdi", VDI), Str("vswitch_controller"), Map("restrictions"), F("metadata_VDIs", FieldType.RefSet(VDI)),
        Str("ha_cluster_stack"), .. Operations(), Map("guest_agent_config"), Map("cpu_info"), Bool("policy_no_vendor_device", RW),
        Bool("live_patching_disabled", RW), Bool("igmp_snooping_enabled"), Str("uefi_certificates"), Bool("is_psr_pending", RW),
        Bool("tls_verification_enabled"), F("repositories", FieldType.StringSet), Bool("client_certificate_auth_enabled"),
        Str("client_certificate_auth_name"), Str("repository_proxy_url"), Str("repository_proxy_username"), Bool("migration_compression", RW),
        Bool("coordinator_bias", RW),
    ]);

    public static readonly ClassSchema HostSchema = new(Host,
    [
        .. Names(), Int("memory_overhead"), .. Operations(), Int("API_version_major", RO, 2), Int("API_version_minor", RO, 21),
        Str("API_version_vendor", RO, "Corral"), Map("API_version_vendor_implementation"), Bool("enabled", RO, true),
        Map("software_version"), Map("other_config", RW), F("capabilities", FieldType.StringSet), Map("cpu_configuration"),
        Str("sched_policy"), F("supported_bootloaders", FieldType.StringSet), Refs("resident_VMs", VM), Map("logging", RW),
        Refs("PIFs", PIF), Ref("suspend_image_sr", SR, RW), Ref("crash_dump_sr", SR, RW), F("crashdumps", FieldType.StringSet),
        F("patches", FieldType.StringSet), F("updates", FieldType.StringSet), Refs("PBDs", PBD), F("host_CPUs", FieldType.StringSet), Map("cpu_info"),
        Str("hostname", RW), Str("address", RW), Ref("metrics", HostMetrics), Map("license_params"), F("ha_statefiles", FieldType.StringSet),
        F("ha_network_peers", FieldType.StringSet), Map("blobs"), F("tags", FieldType.StringSet, RW), Str("external_auth_type"),
        Str("external_auth_service_name"), Map("external_auth_configuration"), Str("edition"), Map("license_server", RW),
        Map("bios_strings"), Str("power_on_mode"), Map("power_on_config"), Ref("local_cache_sr", SR), Map("chipset_info"),
        F("PCIs", FieldType.StringSet), F("PGPUs", FieldType.StringSet), F("PUSBs", FieldType.StringSet), Bool("ssl_legacy", RW),
        Map("guest_VCPUs_params", RW), Str("display", RO, "enabled"), F("virtual_hardware_platform_versions", FieldType.Set(FieldType.Int)),
        Ref("control_domain", VM), F("updates_requiring_reboot", FieldType.StringSet), F("features", FieldType.StringSet), Str("iscsi_iqn"),
        Bool("multipathing"), Str("uefi_certificates"), F("certificates", FieldType.StringSet), F("editions", FieldType.StringSet),
        F("pending_guidances", FieldType.StringSet), Bool("tls_verification_enabled"), Time("last_software_update"),
        Bool("https_only"), Str("latest_synced_updates_applied", RO, "unknown"),
    ]);

    public static readonly ClassSchema HostMetricsSchema = new(HostMetrics,
    [
        Int("memory_total"), Int("memory_free"), Bool("live"), Time("last_updated"), Map("other_config", RW),
    ]);

    public static readonly ClassSchema VMSchema = new(VM,
    [
        .. Operations(), .. Names(), F("power_state", PowerState), Int("user_version", RW, 1), Bool("is_a_template", RW),
        Bool("is_default_template"), Ref("suspend_VDI", VDI), Ref("resident_on", Host), Ref("scheduled_to_be_resident_on", Host),
        Ref("affinity", Host, RW), Int("memory_overhead"), Int("memory_target"), Int("memory_static_max", RO, 268435456),
        Int("memory_dynamic_max", RO, 268435456), Int("memory_dynamic_min", RO, 268435456), Int("memory_static_min", RO, 134217728),
        Map("VCPUs_params", RW), Int("VCPUs_max", RO, 1), Int("VCPUs_at_startup", RO, 1),
        F("actions_after_shutdown", OnNormalExit, RW), F("actions_after_reboot", OnNormalExit, RW, "restart"),
        F("actions_after_crash", OnCrashBehaviour, RW), Refs("consoles", Console), Refs("VIFs", VIF), Refs("VBDs", VBD),
        F("VUSBs", FieldType.StringSet), F("crash_dumps", FieldType.StringSet), F("VTPMs", FieldType.StringSet),
        Str("PV_bootloader", RW), Str("PV_kernel", RW), Str("PV_ramdisk", RW), Str("PV_args", RW), Str("PV_bootloader_args", RW),
        Str("PV_legacy_args", RW), Str("HVM_boot_policy", RW, "BIOS order"), Map("HVM_boot_params", RW),
        F("HVM_shadow_multiplier", FieldType.Float, RO, 1.0), Map("platform", RW), Str("PCI_bus", RW), Map("other_config", RW),
        Int("domid", RO, -1), Str("domarch"), Map("last_boot_CPU_flags"), Bool("is_control_domain"), Ref("metrics", VMMetrics),
        Ref("guest_metrics", VMGuestMetrics), Str("last_booted_record"), Str("recommendations", RW), Map("xenstore_data", RW),
        Bool("ha_always_run"), Str("ha_restart_priority"), Bool("is_a_snapshot"), Ref("snapshot_of", VM), Refs("snapshots", VM),
        Time("snapshot_time"), Str("transportable_snapshot_id"), Map("blobs"), F("tags", FieldType.StringSet, RW),
        Map("blocked_operations", RW), Map("snapshot_info"), Str("snapshot_metadata"), Ref("parent", VM), Refs("children", VM),
        Map("bios_strings"), Str("protection_policy"), Bool("is_snapshot_from_vmpp"), Str("snapshot_schedule"),
        Bool("is_vmss_snapshot"), Str("appliance"), Int("start_delay"), Int("shutdown_delay"), Int("order"),
        F("VGPUs", FieldType.StringSet), F("attached_PCIs", FieldType.StringSet), Ref("suspend_SR", SR, RW), Int("version"),
        Str("generation_id"), Int("hardware_platform_version"), Bool("has_vendor_device"), Bool("requires_reboot"),
        Str("reference_label"), F("domain_type", DomainType, RO, "hvm"), Map("NVRAM"), F("pending_guidances", FieldType.StringSet),
    ]);

    public static readonly ClassSchema VMMetricsSchema = new(VMMetrics,
    [
        Int("memory_actual"), Int("VCPUs_number"), F("VCPUs_utilisation", FieldType.Map(FieldType.Int, FieldType.Float)),
        F("VCPUs_CPU", FieldType.Map(FieldType.Int, FieldType.Int)), Map("VCPUs_params"),
        F("VCPUs_flags", FieldType.Map(FieldType.Int, FieldType.StringSet)), F("state", FieldType.StringSet), Time("start_time"),
        Time("install_time"), Time("last_updated"), Map("other_config", RW), Bool("hvm", RO, true), Bool("nested_virt"),
        Bool("nomigrate"), F("current_domain_type", DomainType, RO, "unspecified"),
    ]);

    public static readonly ClassSchema VMGuestMetricsSchema = new(VMGuestMetrics,
    [
        Map("os_version"), Map("netbios_name"), Map("PV_drivers_version"), Bool("PV_drivers_up_to_date"), Map("memory"), Map("disks"),
        Map("networks"), Map("other"), Time("last_updated"), Map("other_config", RW), Bool("live"),
        F("can_use_hotplug_vbd", Tristate), F("can_use_hotplug_vif", Tristate), Bool("PV_drivers_detected"),
    ]);

    public static readonly ClassSchema SRSchema = new(SR,
    [
        .. Names(), .. Operations(), Refs("VDIs", VDI), Refs("PBDs", PBD), Int("virtual_allocation"), Int("physical_utilisation"),
        Int("physical_size"), Str("type"), Str("content_type"), Bool("shared"), Map("other_config", RW),
        F("tags", FieldType.StringSet, RW), Map("sm_config"), Map("blobs"), Bool("local_cache_enabled"), Str("introduced_by"),
        Bool("clustered"), Bool("is_tools_sr"),
    ]);

    public static readonly ClassSchema PBDSchema = new(PBD,
    [
        Ref("host", Host), Ref("SR", SR), Map("device_config"), Bool("currently_attached"), Map("other_config", RW),
    ]);

    public static readonly ClassSchema VDISchema = new(VDI,
    [
        .. Names(), .. Operations(), Ref("SR", SR), Refs("VBDs", VBD), F("crash_dumps", FieldType.StringSet), Int("virtual_size"),
        Int("physical_utilisation"), F("type", VdiType), Bool("sharable"), Bool("read_only"), Map("other_config", RW),
        Bool("storage_lock"), Str("location"), Bool("managed", RO, true), Bool("missing"), Ref("parent", VDI),
        Map("xenstore_data"), Map("sm_config"), Bool("is_a_snapshot"), Ref("snapshot_of", VDI), Refs("snapshots", VDI),
        Time("snapshot_time"), F("tags", FieldType.StringSet, RW), Bool("allow_caching"), Str("on_boot", RO, "persist"),
        Ref("metadata_of_pool", Pool), Bool("metadata_latest"), Bool("is_tools_iso"), Bool("cbt_enabled"),
    ]);

    public static readonly ClassSchema VBDSchema = new(VBD,
    [
        .. Operations(), Ref("VM", VM), Ref("VDI", VDI), Str("device"), Str("userdevice", RW), Bool("bootable", RW),
        F("mode", VbdMode), F("type", VbdType), Bool("unpluggable", RW, true), Bool("storage_lock"), Bool("empty"),
        Map("other_config", RW), Bool("currently_attached"), Int("status_code"), Str("status_detail"), Map("runtime_properties"),
        Str("qos_algorithm_type", RW), Map("qos_algorithm_params", RW), F("qos_supported_algorithms", FieldType.StringSet),
        Str("metrics", RO, OpaqueRef.Null),
    ]);

    public static readonly ClassSchema NetworkSchema = new(Network,
    [
        .. Names(), .. Operations(), Refs("VIFs", VIF), Refs("PIFs", PIF), Int("MTU", RW, 1500), Map("other_config", RW),
        Str("bridge"), Bool("managed", RO, true), Map("blobs"), F("tags", FieldType.StringSet, RW),
        Str("default_locking_mode", RO, "unlocked"), Map("assigned_ips"), F("purpose", FieldType.StringSet),
    ]);

    public static readonly ClassSchema VIFSchema = new(VIF,
    [
        .. Operations(), Str("device"), Ref("network", Network), Ref("VM", VM), Str("MAC"), Int("MTU", RO, 1500),
        Map("other_config", RW), Bool("currently_attached"), Int("status_code"), Str("status_detail"), Map("runtime_properties"),
        Str("qos_algorithm_type", RW), Map("qos_algorithm_params", RW), F("qos_supported_algorithms", FieldType.StringSet),
        Str("metrics", RO, OpaqueRef.Null), Bool("MAC_autogenerated"), Str("locking_mode", RO, "network_default"),
        F("ipv4_allowed", FieldType.StringSet), F("ipv6_allowed", FieldType.StringSet), Str("ipv4_configuration_mode", RO, "None"),
        F("ipv4_addresses", FieldType.StringSet), Str("ipv4_gateway"), Str("ipv6_configuration_mode", RO, "None"),
        F("ipv6_addresses", FieldType.StringSet), Str("ipv6_gateway"),
    ]);

    public static readonly ClassSchema PIFSchema = new(PIF,
    [
        Str("device"), Ref("network", Network), Ref("host", Host), Str("MAC"), Int("MTU", RO, 1500), Int("VLAN", RO, -1),
        Str("metrics", RO, OpaqueRef.Null), Bool("physical", RO, true), Bool("currently_attached"),
        F("ip_configuration_mode", IpConfigurationMode), Str("IP"), Str("netmask"), Str("gateway"), Str("DNS"),
        Str("bond_slave_of", RO, OpaqueRef.Null), F("bond_master_of", FieldType.StringSet), Str("VLAN_master_of", RO, OpaqueRef.Null),
        F("VLAN_slave_of", FieldType.StringSet), Bool("management"), Map("other_config", RW), Bool("disallow_unplug", RW),
        Str("ipv6_configuration_mode", RO, "None"), F("IPv6", FieldType.StringSet), Str("ipv6_gateway"),
        Str("primary_address_type", RO, "IPv4"), Bool("managed", RO, true), Map("properties"), F("capabilities", FieldType.StringSet),
        Str("igmp_snooping_status", RO, "unknown"),
    ]);

    public static readonly ClassSchema TaskSchema = new(Task,
    [
        .. Names(), .. Operations(), Time("created"), Time("finished"), F("status", TaskStatus), Ref("resident_on", Host),
        F("progress", FieldType.Float), Str("type"), Str("result"), F("error_info", FieldType.StringSet), Map("other_config", RW),
        Ref("subtask_of", Task), Refs("subtasks", Task), Str("backtrace"),
    ]);

    public static readonly ClassSchema MessageSchema = new(Message,
    [
        Str("name"), Int("priority"), F("cls", MessageClass), Str("obj_uuid"), Time("timestamp"), Str("body"),
    ]);

    public static readonly ClassSchema SessionSchema = new(Session,
    [
        Ref("this_host", Host), Str("this_user", RO, OpaqueRef.Null), Time("last_active"), Bool("pool"), Map("other_config", RW),
        Bool("is_local_superuser"), Str("subject", RO, OpaqueRef.Null), Time("validation_time"), Str("auth_user_sid"),
        Str("auth_user_name"), F("rbac_permissions", FieldType.StringSet), Refs("tasks", Task), Ref("parent", Session),
        Str("originator"), Bool("client_certificate"),
    ]);

    /// <summary>A way to reach a running VM's console: the serial line (vt100) or its screen (rfb), served by its host.</summary>
    public static readonly ClassSchema ConsoleSchema = new(Console,
    [
        F("protocol", ConsoleProtocol), Str("location"), Ref("VM", VM), Map("other_config", RW),
    ]);

    public static IReadOnlyList<ClassSchema> All { get; } =
    [
        PoolSchema, HostSchema, HostMetricsSchema, VMSchema, VMMetricsSchema, VMGuestMetricsSchema, SRSchema, PBDSchema,
        VDISchema, VBDSchema, NetworkSchema, VIFSchema, PIFSchema, TaskSchema, MessageSchema, SessionSchema, ConsoleSchema,
    ];

    private static readonly Dictionary<string, ClassSchema> ByName =
        All.ToDictionary(c => c.Name, StringComparer.OrdinalIgnoreCase);

    /// <summary>Finds a class by its XenAPI name, in any case (event.from subscribers write "vm" as often as "VM").</summary>
    public static ClassSchema? Find(string name) => ByName.GetValueOrDefault(name);

    public static ClassSchema Get(string name) =>
        Find(name) ?? throw new XenApiException(ErrorCodes.MessageMethodUnknown, name);
}

/// <summary>
/// A set-of-refs field that is the reverse of a ref field on another class (VM.VBDs is every VBD whose VM is this
/// VM). Reverse links are computed when read, never stored, so they cannot disagree with the forward link.
/// </summary>
public sealed record ReverseLink(string ClassName, string Field, string ChildClass, string ChildField)
{
    public static IReadOnlyList<ReverseLink> All { get; } =
    [
        new(XenClasses.VM, "VBDs", XenClasses.VBD, "VM"),
        new(XenClasses.VM, "VIFs", XenClasses.VIF, "VM"),
        new(XenClasses.VM, "consoles", XenClasses.Console, "VM"),
        new(XenClasses.VDI, "VBDs", XenClasses.VBD, "VDI"),
        new(XenClasses.SR, "VDIs", XenClasses.VDI, "SR"),
        new(XenClasses.SR, "PBDs", XenClasses.PBD, "SR"),
        new(XenClasses.Host, "PBDs", XenClasses.PBD, "host"),
        new(XenClasses.Host, "PIFs", XenClasses.PIF, "host"),
        new(XenClasses.Host, "resident_VMs", XenClasses.VM, "resident_on"),
        new(XenClasses.Network, "VIFs", XenClasses.VIF, "network"),
        new(XenClasses.Network, "PIFs", XenClasses.PIF, "network"),
        new(XenClasses.Task, "subtasks", XenClasses.Task, "subtask_of"),
    ];

    public static IReadOnlyList<ReverseLink> Of(string className) => All.Where(l => l.ClassName == className).ToList();
}
