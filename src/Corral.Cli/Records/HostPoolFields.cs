using Corral.Cli.Api;
using Corral.Api.Client;
using Corral.Model;

namespace Corral.Cli.Records;

/// <summary>The parameters of a host and of the pool, in the order and spelling of xapi's host_record and pool_record.</summary>
public static class HostPoolFields
{
    private const string Metrics = "host_metrics";

    public static IReadOnlyList<XeField> Host()
    {
        var b = new FieldBuilder("host");
        return
        [
            b.Str("uuid", "uuid"),
            b.Str("name-label", "name_label").Rw(b.SetString("name_label")),
            b.Str("name-description", "name_description").Rw(b.SetString("name_description")),
            b.Strings("allowed-operations", "allowed_operations", spell: XeFormat.HostOperation),
            b.MapValues("current-operations", "current_operations", XeFormat.HostOperation),
            b.Bool("enabled", "enabled"),
            b.Str("display", "display"),
            b.Int("API-version-major", "API_version_major"),
            b.Int("API-version-minor", "API_version_minor"),
            b.Str("API-version-vendor", "API_version_vendor"),
            b.Map("API-version-vendor-implementation", "API_version_vendor_implementation"),
            b.Map("logging", "logging").Rw(b.MapRw("logging")),
            b.RefUuid("suspend-image-sr-uuid", "suspend_image_sr", "SR").Rw(b.SetRef("suspend_image_sr", "SR")),
            b.RefUuid("crash-dump-sr-uuid", "crash_dump_sr", "SR").Rw(b.SetRef("crash_dump_sr", "SR")),
            b.Map("software-version", "software_version"),
            b.Strings("capabilities", "capabilities"),
            b.Map("other-config", "other_config").Rw(b.MapRw("other_config")),
            b.Map("cpu_info", "cpu_info"),
            b.Map("chipset-info", "chipset_info"),
            b.Str("hostname", "hostname"),
            b.Str("address", "address"),
            b.Bool("https-only", "https_only").Rw(b.SetPlainBool("https_only", "https-only")),
            b.Strings("supported-bootloaders", "supported_bootloaders"),
            b.RefMapUuids("blobs", "blobs", "blob"),
            b.Int("memory-overhead", "memory_overhead"),
            b.Related("memory-total", "metrics", Metrics, "memory_total", m => XeFormat.Int(m.Long("memory_total"))),
            b.Related("memory-free", "metrics", Metrics, "memory_free", m => XeFormat.Int(m.Long("memory_free"))),
            b.Call("memory-free-computed", async (c, ct) => c.Session is null ? null
                : XeFormat.Int(XenValue.AsLong(await c.Session.CallAsync("host.compute_free_memory", ct, c.Record.Ref)))).AsExpensive(),
            b.Related("host-metrics-live", "metrics", Metrics, "live", m => XeFormat.Bool(m.Bool("live"))),
            b.Strings("patches", "patches", ", ").AsDeprecated(),
            b.Strings("updates", "updates", ", "),
            b.Strings("ha-statefiles", "ha_statefiles", readable: false),
            b.Strings("ha-network-peers", "ha_network_peers", readable: false),
            b.Str("external-auth-type", "external_auth_type"),
            b.Str("external-auth-service-name", "external_auth_service_name"),
            b.Map("external-auth-configuration", "external_auth_configuration"),
            b.Str("edition", "edition"),
            b.Map("license-server", "license_server"),
            b.Str("power-on-mode", "power_on_mode"),
            b.Map("power-on-config", "power_on_config"),
            b.RefUuid("local-cache-sr", "local_cache_sr", "SR"),
            b.Strings("tags", "tags", ", ").Rw(b.SetRw("tags")),
            b.Bool("ssl-legacy", "ssl_legacy").Rw(b.SetBool("ssl_legacy", "ssl-legacy")),
            b.Map("guest_VCPUs_params", "guest_VCPUs_params").Rw(b.MapRw("guest_VCPUs_params")),
            b.Strings("virtual-hardware-platform-versions", "virtual_hardware_platform_versions"),
            b.RefUuid("control-domain-uuid", "control_domain", "VM"),
            b.RefsUuids("resident-vms", "resident_VMs", "VM"),
            b.RefsUuids("updates-requiring-reboot", "updates_requiring_reboot", "pool_update"),
            b.RefsUuids("features", "features", "Feature"),
            b.Str("iscsi_iqn", "iscsi_iqn").Rw(b.SetString("iscsi_iqn")),
            b.Bool("multipathing", "multipathing").Rw(b.SetBool("multipathing", "multipathing")),
            b.Str("uefi-certificates", "uefi_certificates").Rw(b.SetString("uefi_certificates")).AsHidden(),
            b.Str("numa-affinity-policy", "numa_affinity_policy").Rw(b.SetEnum("numa_affinity_policy", XenEnumTypes.HostNumaAffinityPolicy)),
            b.Strings("pending-guidances", "pending_guidances", readable: false),
            b.Bool("tls-verification-enabled", "tls_verification_enabled"),
            b.Date("last-software-update", "last_software_update"),
            b.Str("latest-synced-updates-applied", "latest_synced_updates_applied"),
            b.Strings("pending-guidances-recommended", "pending_guidances_recommended", readable: false),
            b.Strings("pending-guidances-full", "pending_guidances_full", readable: false),
            b.Str("last-update-hash", "last_update_hash"),
            b.Bool("ssh-enabled", "ssh_enabled"),
            b.Int("ssh-enabled-timeout", "ssh_enabled_timeout").Rw(b.SetInt("ssh_enabled_timeout", "ssh-enabled-timeout")),
            b.Date("ssh-expiry", "ssh_expiry"),
            b.Int("console-idle-timeout", "console_idle_timeout").Rw(b.SetInt("console_idle_timeout", "console-idle-timeout")),
            b.Bool("ssh-auto-mode", "ssh_auto_mode").Rw(b.SetBool("ssh_auto_mode", "ssh-auto-mode")),
            b.Str("max-cstate", "max_cstate").Rw(b.SetString("max_cstate")),
            b.Bool("secure-boot", "secure_boot"),
            b.Str("ntp-mode", "ntp_mode").Rw(b.SetEnum("ntp_mode", "DHCP", "Custom", "Factory", "Disabled")),
            b.Strings("ntp-custom-servers", "ntp_custom_servers", ", ").Rw(b.SetParsed("ntp_custom_servers", text =>
                text.Split(',').Select(w => w.Trim()).Where(w => w.Length > 0).Cast<object?>().ToList())),
            b.Str("timezone", "timezone").Rw(b.SetString("timezone")),
        ];
    }

    public static IReadOnlyList<XeField> Pool()
    {
        var b = new FieldBuilder("pool");
        return
        [
            b.Str("uuid", "uuid"),
            b.Str("name-label", "name_label").Rw(b.SetString("name_label")),
            b.Str("name-description", "name_description").Rw(b.SetString("name_description")),
            b.RefUuid("master", "master", "host"),
            b.RefUuid("default-SR", "default_SR", "SR").Rw(b.SetRef("default_SR", "SR")),
            b.RefUuid("crash-dump-SR", "crash_dump_SR", "SR").Rw(b.SetRef("crash_dump_SR", "SR")),
            b.RefUuid("suspend-image-SR", "suspend_image_SR", "SR").Rw(b.SetRef("suspend_image_SR", "SR")),
            b.Call("supported-sr-types", async (c, ct) => c.Session is null ? null
                : XeFormat.Set(XenValue.AsStrings(await c.Session.CallAsync("SR.get_supported_types", ct)))).AsExpensive(),
            b.Map("other-config", "other_config").Rw(b.MapRw("other_config")),
            b.Strings("allowed-operations", "allowed_operations"),
            b.MapValues("current-operations", "current_operations", s => s),
            b.Bool("ha-enabled", "ha_enabled"),
            b.Map("ha-configuration", "ha_configuration", readable: false),
            b.Strings("ha-statefiles", "ha_statefiles", readable: false),
            b.Int("ha-host-failures-to-tolerate", "ha_host_failures_to_tolerate").Rw(b.SetPlainInt("ha_host_failures_to_tolerate")),
            b.Int("ha-plan-exists-for", "ha_plan_exists_for"),
            b.Bool("ha-allow-overcommit", "ha_allow_overcommit").Rw(b.SetPlainBool("ha_allow_overcommit", "ha-allow-overcommit")),
            b.Bool("ha-overcommitted", "ha_overcommitted"),
            b.Bool("ha-reboot-vm-on-internal-shutdown", "ha_reboot_vm_on_internal_shutdown")
                .Rw(b.SetPlainBool("ha_reboot_vm_on_internal_shutdown", "ha-reboot-vm-on-internal-shutdown")),
            b.RefMapUuids("blobs", "blobs", "blob"),
            b.Str("wlb-url", "wlb_url"),
            b.Str("wlb-username", "wlb_username"),
            b.Bool("wlb-enabled", "wlb_enabled").Rw(b.SetPlainBool("wlb_enabled", "wlb-enabled")),
            b.Bool("wlb-verify-cert", "wlb_verify_cert").Rw(b.SetPlainBool("wlb_verify_cert", "wlb-verify-cert")),
            b.Bool("igmp-snooping-enabled", "igmp_snooping_enabled").Rw(b.SetPlainBool("igmp_snooping_enabled", "igmp-snooping-enabled")),
            b.Map("gui-config", "gui_config").Rw(b.MapRw("gui_config")),
            b.Map("health-check-config", "health_check_config").Rw(b.MapRw("health_check_config")),
            b.Computed("vswitch-controller", c => c.Record.Str("vswitch_controller") is { Length: > 0 } v ? v : "<not set>", ["vswitch_controller"]).AsHidden(),
            b.Map("restrictions", "restrictions", readable: false),
            b.Strings("tags", "tags", ", ").Rw(b.SetRw("tags")),
            b.Call("license-state", async (c, ct) => c.Session is null ? null
                : XeFormat.Map(XenValue.AsMap(await c.Session.CallAsync("pool.get_license_state", ct, c.Record.Ref)))),
            b.Str("ha-cluster-stack", "ha_cluster_stack"),
            b.Map("guest-agent-config", "guest_agent_config").Rw(b.MapRw("guest_agent_config")),
            b.Map("cpu_info", "cpu_info"),
            b.Bool("policy-no-vendor-device", "policy_no_vendor_device").Rw(b.SetBool("policy_no_vendor_device", "policy-no-vendor-device")),
            b.Bool("live-patching-disabled", "live_patching_disabled").Rw(b.SetBool("live_patching_disabled", "live-patching-disabled")),
            b.Str("uefi-certificates", "uefi_certificates").Rw(b.SetString("uefi_certificates")).AsHidden(),
            b.Str("custom-uefi-certificates", "custom_uefi_certificates").Rw(b.SetString("custom_uefi_certificates")).AsHidden(),
            b.Bool("tls-verification-enabled", "tls_verification_enabled"),
            b.Bool("client-certificate-auth-enabled", "client_certificate_auth_enabled"),
            b.Str("client-certificate-auth-name", "client_certificate_auth_name"),
            b.RefsUuids("repositories", "repositories", "Repository").Rw(b.SetRefs("repositories", "Repository"))
                .Rw(b.SetRw("repository", FieldBuilder.RefByUuid("Repository"))),
            b.Str("repository-proxy-url", "repository_proxy_url"),
            b.Str("repository-proxy-username", "repository_proxy_username"),
            b.Computed("https-only", c => XeFormat.Bool(c.Cache.Loaded("host").All(h => h.Bool("https_only"))), [], new ClassNeed("host"))
                with { Requires = [("host", "https_only")], Setter = b.SetPlainBool("https_only", "https-only") },
            b.Bool("migration-compression", "migration_compression").Rw(b.SetPlainBool("migration_compression", "migration-compression")),
            b.Bool("coordinator-bias", "coordinator_bias").Rw(b.SetPlainBool("coordinator_bias", "coordinator-bias")),
            b.Str("telemetry-frequency", "telemetry_frequency"),
            b.Date("telemetry-next-collection", "telemetry_next_collection"),
            b.Date("last-update-sync", "last_update_sync"),
            b.Str("update-sync-frequency", "update_sync_frequency"),
            b.Int("update-sync-day", "update_sync_day"),
            b.Bool("update-sync-enabled", "update_sync_enabled"),
            b.Bool("auto-update-vm-secureboot-certificates", "auto_update_vm_secureboot_certificates")
                .Rw(b.SetPlainBool("auto_update_vm_secureboot_certificates", "auto-update-vm-secureboot-certificates")),
            b.Map("recommendations", "recommendations"),
            b.Bool("ext-auth-cache-enabled", "ext_auth_cache_enabled").Rw(b.SetPlainBool("ext_auth_cache_enabled", "ext-auth-cache-enabled")),
            b.Int("ext-auth-cache-size", "ext_auth_cache_size").Rw(b.SetPlainInt("ext_auth_cache_size")),
            b.Int("ext-auth-cache-expiry", "ext_auth_cache_expiry").Rw(b.SetPlainInt("ext_auth_cache_expiry")),
            b.Map("license-server", "license_server").Rw(b.MapRw("license_server")),
            AcrossHosts(b, "ssh-enabled", "ssh_enabled", h => XeFormat.Bool(h.Bool("ssh_enabled"))),
            AcrossHosts(b, "ssh-enabled-timeout", "ssh_enabled_timeout", h => XeFormat.Int(h.Long("ssh_enabled_timeout")))
                .Rw(b.SetInt("ssh_enabled_timeout", "ssh-enabled-timeout")),
            AcrossHosts(b, "ssh-expiry", "ssh_expiry", h => XeFormat.Date(h.Raw("ssh_expiry"))),
            AcrossHosts(b, "console-idle-timeout", "console_idle_timeout", h => XeFormat.Int(h.Long("console_idle_timeout")))
                .Rw(b.SetInt("console_idle_timeout", "console-idle-timeout")),
            AcrossHosts(b, "ssh-auto-mode", "ssh_auto_mode", h => XeFormat.Bool(h.Bool("ssh_auto_mode")))
                .Rw(b.SetBool("ssh_auto_mode", "ssh-auto-mode")),
            b.Bool("limit-console-sessions", "limit_console_sessions").Rw(b.SetBool("limit_console_sessions", "limit-console-sessions")),
            b.Int("vm-console-idle-timeout", "vm_console_idle_timeout").Rw(b.SetInt("vm_console_idle_timeout", "vm-console-idle-timeout")),
        ];
    }

    /// <summary>
    /// A host parameter shown on the pool: its value when every host has the same, else (or with no host)
    /// <c>&lt;inconsistent&gt;</c>, as xe's <c>get_consistent_field_or_default</c>.
    /// </summary>
    private static XeField AcrossHosts(FieldBuilder b, string name, string hostKey, Func<XenRecord, string> format) =>
        b.Computed(name, c =>
        {
            var values = c.Cache.Loaded("host").Select(format).Distinct().ToList();
            return values.Count == 1 ? values[0] : "<inconsistent>";
        }, [], new ClassNeed("host")) with { Requires = [("host", hostKey)] };
}
