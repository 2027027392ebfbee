using Corral.Model;

namespace Corral.Cli;

/// <summary>
/// The xe parameters of each class: every XenAPI field under its dashed name, references printed as uuids, and the
/// computed parameters xe adds (host-metrics-live, networks, resident-on, sr-uuid...).
/// </summary>
public static class ParamCatalog
{
    /// <summary>What xe shows by default in &lt;class&gt;-list.</summary>
    public static readonly Dictionary<string, string[]> DefaultListParams = new(StringComparer.Ordinal)
    {
        ["vm"] = ["uuid", "name-label", "power-state"],
        ["template"] = ["uuid", "name-label", "name-description"],
        ["host"] = ["uuid", "name-label", "name-description"],
        ["sr"] = ["uuid", "name-label", "name-description", "host", "type", "content-type"],
        ["vdi"] = ["uuid", "name-label", "name-description", "sr-uuid", "virtual-size", "sharable", "read-only"],
        ["network"] = ["uuid", "name-label", "name-description", "bridge"],
        ["pool"] = ["uuid", "name-label", "name-description", "master", "default-SR"],
        ["vif"] = ["uuid", "vm-uuid", "device", "network-uuid"],
        ["vbd"] = ["uuid", "vm-uuid", "vm-name-label", "vdi-uuid", "empty", "device"],
        ["pbd"] = ["uuid", "host-uuid", "sr-uuid", "device-config", "currently-attached"],
        ["pif"] = ["uuid", "device", "currently-attached", "VLAN", "network-uuid"],
        ["task"] = ["uuid", "name-label", "name-description", "status", "progress"],
    };

    /// <summary>The XenAPI class behind an xe object name.</summary>
    public static string ClassOf(string xeName) => xeName switch
    {
        "vm" or "template" => XenClasses.VM,
        "host" => XenClasses.Host,
        "sr" => XenClasses.SR,
        "vdi" => XenClasses.VDI,
        "vbd" => XenClasses.VBD,
        "vif" => XenClasses.VIF,
        "pif" => XenClasses.PIF,
        "pbd" => XenClasses.PBD,
        "network" => XenClasses.Network,
        "pool" => XenClasses.Pool,
        "task" => XenClasses.Task,
        _ => throw new CliException($"Unknown class {xeName}"),
    };

    public static string XeName(string field) => field.Replace('_', '-');

    private static string Qualifier(FieldSchema f) => (f.Access, f.IsMap || f.Type is FieldType.SetOf) switch
    {
        (FieldAccess.RW, true) when f.IsMap => "MRW",
        (FieldAccess.RW, true) => "SRW",
        (FieldAccess.RW, false) => "RW",
        (_, true) when f.IsMap => "MRO",
        (_, true) => "SRO",
        _ => "RO",
    };

    public static IReadOnlyList<CliParam> For(string xeClass)
    {
        var className = ClassOf(xeClass);
        var schema = XenClasses.Get(className);
        var list = new List<CliParam>();
        foreach (var f in schema.Fields)
        {
            var field = f;
            Func<PoolView, Dictionary<string, object?>, string> print = field.Type switch
            {
                FieldType.RefTo to => (view, r) => view.UuidOf(to.ClassName, r.GetValueOrDefault(field.Name)),
                FieldType.SetOf { Element: FieldType.RefTo to } => (view, r) =>
                    string.Join("; ", ((IEnumerable<object?>?)r.GetValueOrDefault(field.Name) ?? []).Select(x => view.UuidOf(to.ClassName, x))),
                _ => (_, r) => Printer.Format(r.GetValueOrDefault(field.Name), field.Type),
            };
            list.Add(new CliParam(XeName(field.Name), Qualifier(field), print, field.Name));
        }

        list.AddRange(Computed(className));
        return list;
    }

    /// <summary>The classes whose records the computed parameters and reference uuids of a class need.</summary>
    public static IEnumerable<string> RelatedClasses(string className) =>
        XenClasses.Get(className).Fields.Select(f => f.Type switch
            {
                FieldType.RefTo to => to.ClassName,
                FieldType.SetOf { Element: FieldType.RefTo to } => to.ClassName,
                _ => null,
            })
            .OfType<string>()
            .Concat(className switch
            {
                XenClasses.Host => [XenClasses.HostMetrics],
                XenClasses.VM => [XenClasses.VMMetrics, XenClasses.VMGuestMetrics, XenClasses.Host],
                XenClasses.SR => [XenClasses.PBD, XenClasses.Host],
                _ => Array.Empty<string>(),
            })
            .Distinct();

    private static Dictionary<string, object?>? Related(PoolView view, string cls, Dictionary<string, object?> r, string field) =>
        view.Find(cls, r.GetValueOrDefault(field) as string ?? "");

    private static IEnumerable<CliParam> Computed(string className) => className switch
    {
        XenClasses.Host =>
        [
            new("host-metrics-live", "RO", (v, r) => Printer.Format(Related(v, XenClasses.HostMetrics, r, "metrics")?.GetValueOrDefault("live") ?? false)),
            new("memory-total", "RO", (v, r) => Printer.Format(Related(v, XenClasses.HostMetrics, r, "metrics")?.GetValueOrDefault("memory_total"))),
            new("memory-free", "RO", (v, r) => Printer.Format(Related(v, XenClasses.HostMetrics, r, "metrics")?.GetValueOrDefault("memory_free"))),
        ],
        XenClasses.VM =>
        [
            new("memory-actual", "RO", (v, r) => Printer.Format(Related(v, XenClasses.VMMetrics, r, "metrics")?.GetValueOrDefault("memory_actual"))),
            new("start-time", "RO", (v, r) => Printer.Format(Related(v, XenClasses.VMMetrics, r, "metrics")?.GetValueOrDefault("start_time"))),
            new("networks", "MRO", (v, r) => Printer.Format(Related(v, XenClasses.VMGuestMetrics, r, "guest_metrics")?.GetValueOrDefault("networks")), "networks"),
            new("os-version", "MRO", (v, r) => Printer.Format(Related(v, XenClasses.VMGuestMetrics, r, "guest_metrics")?.GetValueOrDefault("os_version")), "os_version"),
            new("PV-drivers-version", "MRO", (v, r) => Printer.Format(Related(v, XenClasses.VMGuestMetrics, r, "guest_metrics")?.GetValueOrDefault("PV_drivers_version")), "PV_drivers_version"),
            new("PV-drivers-detected", "RO", (v, r) => Printer.Format(Related(v, XenClasses.VMGuestMetrics, r, "guest_metrics")?.GetValueOrDefault("PV_drivers_detected") ?? false)),
            new("resident-on-name-label", "RO", (v, r) => Printer.Format(Related(v, XenClasses.Host, r, "resident_on")?.GetValueOrDefault("name_label") ?? "<not in database>")),
        ],
        XenClasses.SR =>
        [
            new("host", "RO", (v, r) => (bool)(r.GetValueOrDefault("shared") ?? false) ? "<shared>"
                : ((IEnumerable<object?>?)r.GetValueOrDefault("PBDs") ?? []).Select(p => v.Find(XenClasses.PBD, (string)p!))
                    .Select(p => p is null ? null : v.Find(XenClasses.Host, (string)p["host"]!)?["name_label"] as string).FirstOrDefault() ?? "<not in database>"),
        ],
        XenClasses.VDI => [new("sr-uuid", "RO", (v, r) => v.UuidOf(XenClasses.SR, r.GetValueOrDefault("SR"))), new("sr-name-label", "RO", (v, r) => Printer.Format(Related(v, XenClasses.SR, r, "SR")?.GetValueOrDefault("name_label")))],
        XenClasses.VBD =>
        [
            new("vm-uuid", "RO", (v, r) => v.UuidOf(XenClasses.VM, r.GetValueOrDefault("VM"))),
            new("vm-name-label", "RO", (v, r) => Printer.Format(Related(v, XenClasses.VM, r, "VM")?.GetValueOrDefault("name_label"))),
            new("vdi-uuid", "RO", (v, r) => v.UuidOf(XenClasses.VDI, r.GetValueOrDefault("VDI"))),
            new("vdi-name-label", "RO", (v, r) => Printer.Format(Related(v, XenClasses.VDI, r, "VDI")?.GetValueOrDefault("name_label") ?? "<not in database>")),
        ],
        XenClasses.VIF =>
        [
            new("vm-uuid", "RO", (v, r) => v.UuidOf(XenClasses.VM, r.GetValueOrDefault("VM"))),
            new("vm-name-label", "RO", (v, r) => Printer.Format(Related(v, XenClasses.VM, r, "VM")?.GetValueOrDefault("name_label"))),
            new("network-uuid", "RO", (v, r) => v.UuidOf(XenClasses.Network, r.GetValueOrDefault("network"))),
            new("network-name-label", "RO", (v, r) => Printer.Format(Related(v, XenClasses.Network, r, "network")?.GetValueOrDefault("name_label"))),
        ],
        XenClasses.PBD =>
        [
            new("host-uuid", "RO", (v, r) => v.UuidOf(XenClasses.Host, r.GetValueOrDefault("host"))),
            new("sr-uuid", "RO", (v, r) => v.UuidOf(XenClasses.SR, r.GetValueOrDefault("SR"))),
        ],
        XenClasses.PIF => [new("network-uuid", "RO", (v, r) => v.UuidOf(XenClasses.Network, r.GetValueOrDefault("network"))), new("host-uuid", "RO", (v, r) => v.UuidOf(XenClasses.Host, r.GetValueOrDefault("host")))],
        _ => [],
    };
}
