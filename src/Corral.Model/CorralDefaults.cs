namespace Corral.Model;

/// <summary>
/// The few defaults Corral sets where xapi's datamodel gives none (or the first enum value would mislead): what a new
/// object gets when its creator leaves the field out, as xapi's own constructors fill them in.
/// </summary>
internal static class CorralDefaults
{
    private static readonly Dictionary<(string Class, string Field), object> Values = new()
    {
        [("host", "API_version_major")] = XenServerVersion.ApiVersionMajor,
        [("host", "API_version_minor")] = XenServerVersion.ApiVersionMinor,
        [("host", "API_version_vendor")] = XenServerVersion.ApiVersionVendor,
        [("host", "enabled")] = true,
        [("VM", "user_version")] = 1L,
        [("VM", "memory_static_max")] = 268435456L,
        [("VM", "memory_dynamic_max")] = 268435456L,
        [("VM", "memory_dynamic_min")] = 268435456L,
        [("VM", "memory_static_min")] = 134217728L,
        [("VM", "VCPUs_max")] = 1L,
        [("VM", "VCPUs_at_startup")] = 1L,
        [("VM", "actions_after_reboot")] = "restart",
        [("VM", "actions_after_crash")] = "restart",
        [("VM", "HVM_boot_policy")] = "BIOS order",
        [("VM", "domid")] = -1L,
        [("VM", "domain_type")] = "hvm",
        [("VM_metrics", "hvm")] = true,
        [("VM_guest_metrics", "can_use_hotplug_vbd")] = "unspecified",
        [("VM_guest_metrics", "can_use_hotplug_vif")] = "unspecified",
        [("VDI", "type")] = "user",
        [("VDI", "managed")] = true,
        [("VBD", "mode")] = "RW",
        [("VBD", "type")] = "Disk",
        [("VIF", "MTU")] = 1500L,
        [("PIF", "MTU")] = 1500L,
        [("PIF", "VLAN")] = -1L,
        [("PIF", "physical")] = true,
    };

    public static FieldSchema Apply(string className, FieldSchema field) =>
        Values.TryGetValue((className, field.Name), out var value) ? field with { Default = value } : field;
}
