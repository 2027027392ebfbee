namespace Corral.Model;

/// <summary>
/// What a host's <c>license_params</c> and the pool's <c>restrictions</c> say: for every feature flag xapi and
/// XenCenter know, whether Corral provides the feature. Clients read these as switches (XenCenter treats a missing
/// <c>restrict_*</c> key as restricted for most features, Xen Orchestra compares with "false"), so every key is written
/// explicitly: "false" for what Corral does, "true" for what it does not. Nothing here is a licence: Corral has none,
/// and the figures only say truthfully what works.
/// </summary>
public static class HostLicense
{
    /// <summary>The edition Corral reports: XenCenter and Xen Orchestra read anything unknown as their free edition.</summary>
    public const string Edition = "free";

    /// <summary>
    /// The flags, as xapi names them (ocaml/xapi-types/features.ml) plus the ones only XenCenter reads, each with
    /// whether Corral provides the feature. <c>enable_xha</c> is the one positive flag ("true" = available).
    /// </summary>
    public static IReadOnlyList<(string Key, bool Provided)> Features { get; } =
    [
        ("restrict_vlan", false),
        ("restrict_qos", false),
        ("restrict_pool_attached_storage", true), // shared SRs
        ("restrict_netapp", false),
        ("restrict_equalogic", false),
        ("restrict_pooling", true),
        ("enable_xha", true), // HA with fencing
        ("restrict_marathon", false),
        ("restrict_email_alerting", false),
        ("restrict_historical_performance", false), // one hour of performance data, in memory
        ("restrict_wlb", false),
        ("restrict_rbac", true), // roles, enforced for the users of the pool's external directory
        ("restrict_dmc", false),
        ("restrict_checkpoint", false),
        ("restrict_cpu_masking", false),
        ("restrict_connection", true), // no limit on connections
        ("platform_filter", true), // no platform filter
        ("regular_nag_dialog", true), // no nag
        ("restrict_vmpr", false),
        ("restrict_vmss", false),
        ("restrict_intellicache", false),
        ("restrict_gpu", false),
        ("restrict_dr", false),
        ("restrict_vif_locking", false),
        ("restrict_storage_xen_motion", true), // storage live migration
        ("restrict_vgpu", false),
        ("restrict_integrated_gpu_passthrough", false),
        ("restrict_vss", false),
        ("restrict_guest_agent_auto_update", false),
        ("restrict_pci_device_for_auto_update", false),
        ("restrict_xen_motion", true), // live migration
        ("restrict_guest_ip_setting", false),
        ("restrict_ad", false),
        ("restrict_nested_virt", false),
        ("restrict_live_patching", false),
        ("restrict_set_vcpus_number_live", true), // vCPU hot-plug (VM.set_VCPUs_number_live)
        ("restrict_pvs_proxy", false),
        ("restrict_igmp_snooping", false),
        ("restrict_rpu", false),
        ("restrict_pool_size", true), // no limit on pool size
        ("restrict_cbt", false),
        ("restrict_usb_passthrough", false),
        ("restrict_network_sriov", false),
        ("restrict_corosync", false),
        ("restrict_cluster_address", false),
        ("restrict_zstd_export", false),
        ("restrict_pool_secret_rotation", false),
        ("restrict_certificate_verification", false), // TLS between hosts is not verified yet
        ("restrict_updates", false),
        ("restrict_internal_repo_access", false),
        ("restrict_vtpm", true), // swtpm per VM (VTPM)
        ("restrict_vm_groups", false),
        ("restrict_vm_start", true),
        ("restrict_vm_appliance_start", false),
        // Read by XenCenter only (xapi's licensing daemon adds them on XenServer).
        ("restrict_hotfix_apply", false),
        ("restrict_batch_hotfix_apply", false),
        ("restrict_cifs", false),
        ("restrict_vswitch_controller", false),
        ("restrict_xcm", false),
        ("restrict_management_on_vlan", false),
        ("restrict_export_resource_data", false),
        ("restrict_read_caching", false),
        ("restrict_health_check", false),
        ("restrict_ssl_legacy_switch", false),
    ];

    /// <summary>The one flag that says a feature is there when "true"; all others say it is missing.</summary>
    public static bool IsPositive(string key) => !key.StartsWith("restrict_", StringComparison.Ordinal) && key is not ("platform_filter" or "regular_nag_dialog");

    /// <summary>The flag's value for a feature provided or not.</summary>
    public static string Value(string key, bool provided) => (IsPositive(key) ? provided : !provided) ? "true" : "false";

    /// <summary><c>host.license_params</c>: every flag, explicitly.</summary>
    public static Dictionary<string, string> LicenseParams() =>
        Features.ToDictionary(f => f.Key, f => Value(f.Key, f.Provided), StringComparer.Ordinal);

    /// <summary>
    /// <c>pool.restrictions</c>, as xapi combines its hosts' flags: a feature is available to the pool only if every host
    /// has it. A host that does not name a flag counts as not having the feature.
    /// </summary>
    public static Dictionary<string, string> PoolRestrictions(IEnumerable<IReadOnlyDictionary<string, string>> hosts)
    {
        var all = hosts.ToList();
        var restrictions = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, _) in Features)
        {
            var provided = all.Count > 0 && all.All(h => h.TryGetValue(key, out var v) && v == Value(key, true));
            restrictions[key] = Value(key, provided);
        }

        return restrictions;
    }
}
