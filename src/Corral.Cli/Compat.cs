using Corral.Cli.Output;
using Corral.Cli.Records;
using Corral.Model;

namespace Corral.Cli;

/// <summary>Printing helpers under their first names (kept for the callers that use them).</summary>
public static class Printer
{
    /// <summary>A value as xe prints it: maps <c>k: v; k2: v2</c>, sets <c>a; b</c>, enums as xe spells them.</summary>
    public static string Format(object? value, FieldType? type = null) => (value, type) switch
    {
        (string s, FieldType.EnumOf e) when e.EnumName == "vm_power_state" => XeFormat.PowerState(s),
        (string s, FieldType.EnumOf e) when e.EnumName == "vdi_type" => XeFormat.VdiType(s),
        (string s, FieldType.EnumOf e) when e.EnumName == "on_normal_exit" => XeFormat.OnNormalExit(s),
        (string s, FieldType.EnumOf e) when e.EnumName == "on_crash_behaviour" => XeFormat.OnCrash(s),
        (string s, FieldType.EnumOf e) when e.EnumName == "tristate_type" => XeFormat.Tristate(s),
        (string s, FieldType.EnumOf e) when e.EnumName == "domain_type" => XeFormat.DomainType(s),
        _ => XeFormat.Value(value),
    };

    /// <summary>One record as xe prints it, from (name, qualifier, value) triples.</summary>
    public static string Record(IReadOnlyList<(string Name, string Access, string Value)> fields) =>
        XePrinter.MultiLineRecord(fields.Select(f => new KeyValuePair<string, string>($"{f.Name} ({f.Access.PadLeft(3)})", f.Value)).ToList());
}

/// <summary>The xe parameters of each class, under their first name.</summary>
public static class ParamCatalog
{
    /// <summary>What <c>xe &lt;class&gt;-list</c> prints by default.</summary>
    public static Dictionary<string, string[]> DefaultListParams { get; } =
        XeClasses.All.ToDictionary(c => c.Name, c => c.DefaultListParams.ToArray(), StringComparer.Ordinal);

    public static IReadOnlyList<XeField> For(string xeClass) =>
        XeClasses.Find(xeClass)?.Fields ?? throw new CliException($"Unknown class {xeClass}");
}

/// <summary>Size parsing under its first name.</summary>
public static class Commands
{
    /// <summary>A size as xe reads it (bytes, or with KiB/MiB/GiB/TiB and their short forms).</summary>
    public static long Size(string text) => XeValues.ParseBytes("size", text);
}
