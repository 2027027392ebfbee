using System.Globalization;
using Corral.Model;

namespace Corral.Cli.Records;

/// <summary>
/// How xe spells values (xapi's records.ml and record_util.ml): booleans <c>true</c>/<c>false</c>, floats with three
/// decimals, datetimes <c>yyyyMMddTHH:mm:ssZ</c>, maps <c>k1: v1; k2: v2</c>, sets joined by <c>"; "</c> (tags and
/// a few old sets by <c>", "</c>), and a handful of enums spelled differently from their wire names.
/// </summary>
public static class XeFormat
{
    public const string NotInDatabase = PoolCache.NotInDatabase;

    public const string UnknownTime = "<unknown time>";

    public static string Bool(bool b) => b ? "true" : "false";

    public static string Int(long l) => l.ToString(CultureInfo.InvariantCulture);

    /// <summary>OCaml's <c>%.3f</c>.</summary>
    public static string Float(double d) => d.ToString("F3", CultureInfo.InvariantCulture);

    /// <summary>xapi's <c>Date.to_rfc3339</c>: <c>yyyyMMddTHH:mm:ssZ</c> in UTC.</summary>
    public static string Date(object? value) => value switch
    {
        DateTime dt => XenDateTime.Format(dt),
        string s when s.Length > 0 => TryDate(s),
        _ => XenDateTime.Format(XenDateTime.Epoch),
    };

    private static string TryDate(string s)
    {
        try
        {
            return XenDateTime.Format(XenDateTime.Parse(s));
        }
        catch (FormatException)
        {
            return s;
        }
    }

    /// <summary>xe's <c>get_from_map</c>: <c>k1: v1; k2: v2</c>.</summary>
    public static string Map(IEnumerable<KeyValuePair<string, string>> map) => string.Join("; ", map.Select(kv => $"{kv.Key}: {kv.Value}"));

    public static string Set(IEnumerable<string> items, string separator = "; ") => string.Join(separator, items);

    /// <summary><c>vm_power_state_to_lowercase_string</c>: the wire name with its first letter lowered.</summary>
    public static string PowerState(string wire) => wire.Length == 0 ? wire : char.ToLowerInvariant(wire[0]) + wire[1..];

    /// <summary><c>vdi_type_to_string</c>.</summary>
    public static string VdiType(string wire) => wire.ToLowerInvariant() switch
    {
        "system" => "System",
        "user" => "User",
        "ephemeral" => "Ephemeral",
        "suspend" => "Suspend",
        "crashdump" => "Crashdump",
        "ha_statefile" => "HA statefile",
        "metadata" => "Metadata",
        "redo_log" => "Redo log",
        "rrd" => "rrd",
        "pvs_cache" => "PVS cache",
        "cbt_metadata" => "CBT metadata",
        _ => wire,
    };

    /// <summary><c>on_normal_exit_to_string</c>.</summary>
    public static string OnNormalExit(string wire) => wire.ToLowerInvariant() switch
    {
        "destroy" => "Destroy",
        "restart" => "Restart",
        _ => wire,
    };

    /// <summary><c>on_softreboot_behaviour_to_string</c>.</summary>
    public static string OnSoftReboot(string wire) => wire.ToLowerInvariant() switch
    {
        "destroy" => "Destroy",
        "restart" => "Restart",
        "preserve" => "Preserve",
        "soft_reboot" => "Soft reboot",
        _ => wire,
    };

    /// <summary><c>on_crash_behaviour_to_string</c>.</summary>
    public static string OnCrash(string wire) => wire.ToLowerInvariant() switch
    {
        "destroy" => "Destroy",
        "coredump_and_destroy" => "Core dump and destroy",
        "restart" => "Restart",
        "coredump_and_restart" => "Core dump and restart",
        "preserve" => "Preserve",
        "rename_restart" => "Rename restart",
        _ => wire,
    };

    /// <summary><c>tristate_to_string</c>.</summary>
    public static string Tristate(string wire) => wire.ToLowerInvariant() switch
    {
        "yes" => "true",
        "no" => "false",
        "unspecified" => "unspecified",
        _ => wire,
    };

    /// <summary><c>domain_type_to_string</c>.</summary>
    public static string DomainType(string wire) => wire == "pv_in_pvh" ? "pv-in-pvh" : wire;

    /// <summary>The VM operations xe can name (record_util's table), by wire name.</summary>
    private static readonly HashSet<string> NamedVmOperations = new(StringComparer.Ordinal)
    {
        "assert_operation_valid", "changing_dynamic_range", "changing_static_range", "changing_shadow_memory", "clean_reboot",
        "clean_shutdown", "clone", "snapshot", "checkpoint", "snapshot_with_quiesce", "copy", "revert", "reverting", "provision",
        "destroy", "export", "metadata_export", "import", "get_boot_record", "data_source_op", "hard_reboot", "hard_shutdown",
        "migrate_send", "pause", "resume", "resume_on", "changing_VCPUs_live", "changing_NVRAM", "start", "start_on", "shutdown",
        "suspend", "unpause", "update_allowed_operations", "make_into_template", "send_sysrq", "send_trigger",
        "changing_memory_live", "awaiting_memory_live", "changing_shadow_memory_live", "pool_migrate", "power_state_reset", "csvm",
        "call_plugin", "create_vtpm", "sysprep",
    };

    /// <summary>
    /// <c>vm_operation_to_string</c>: the wire names, but for two that xe spells its own way; an operation its table
    /// lacks is <c>(unknown operation)</c>.
    /// </summary>
    public static string VmOperation(string wire) => wire switch
    {
        "data_source_op" => "data_sources_op",
        "assert_operation_valid" => "assertoperationvalid",
        _ when NamedVmOperations.Contains(wire) => wire,
        _ => "(unknown operation)",
    };

    /// <summary><c>string_to_vm_operation</c>: the wire name of an operation as xe spells it; null if xe does not know it.</summary>
    public static string? VmOperationWire(string spelled) => spelled switch
    {
        "data_sources_op" => "data_source_op",
        "assertoperationvalid" => "assert_operation_valid",
        "data_source_op" or "assert_operation_valid" => null,
        _ when NamedVmOperations.Contains(spelled) => spelled,
        _ => null,
    };

    /// <summary><c>sr_operation_to_string</c>: the VDI and PBD operations as <c>VDI.create</c>, <c>PBD.create</c>.</summary>
    public static string SrOperation(string wire) => wire switch
    {
        _ when wire.StartsWith("vdi_", StringComparison.Ordinal) => "VDI." + wire[4..],
        _ when wire.StartsWith("pbd_", StringComparison.Ordinal) => "PBD." + wire[4..],
        _ => wire,
    };

    /// <summary>Console <c>protocol_to_string</c>: VT100, RFB, RDP.</summary>
    public static string ConsoleProtocol(string wire) => wire.ToUpperInvariant();

    /// <summary><c>pvs_proxy_status_to_string</c>: dashes for underscores.</summary>
    public static string PvsProxyStatus(string wire) => wire.Replace('_', '-');

    /// <summary><c>allocation_algorithm_to_string</c>: depth-first, breadth-first.</summary>
    public static string AllocationAlgorithm(string wire) => wire.Replace('_', '-');

    /// <summary><c>host_operation_to_string</c>: wire names, but VM.start style for the VM ones.</summary>
    public static string HostOperation(string wire) => wire switch
    {
        "vm_start" => "VM.start",
        "vm_resume" => "VM.resume",
        "vm_migrate" => "VM.migrate",
        _ => wire,
    };

    /// <summary><c>task_allowed_operations_to_string</c>.</summary>
    public static string TaskOperation(string wire) => wire switch
    {
        "cancel" => "Cancel",
        "destroy" => "Destroy",
        _ => wire,
    };

    /// <summary>The literal a generic XenAPI value is printed as (for callers without a field definition).</summary>
    public static string Value(object? value) => value switch
    {
        null => "",
        string s => s,
        bool b => Bool(b),
        long l => Int(l),
        int i => Int(i),
        double d => Float(d),
        DateTime dt => XenDateTime.Format(dt),
        IEnumerable<KeyValuePair<string, object?>> map => Map(map.Select(kv => new KeyValuePair<string, string>(kv.Key, Value(kv.Value)))),
        IEnumerable<KeyValuePair<string, string>> map => Map(map),
        System.Collections.IEnumerable list => Set(list.Cast<object?>().Select(Value)),
        _ => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "",
    };
}
