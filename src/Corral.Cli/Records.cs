using System.Globalization;
using Corral.Model;

namespace Corral.Cli;

/// <summary>One xe parameter of a class: its dashed name, its qualifier (RO, RW, MRW, MRO, SRO) and how to print it.</summary>
public sealed record CliParam(string Name, string Access, Func<PoolView, Dictionary<string, object?>, string> Print, string? Field = null);

/// <summary>Every record of the classes a command needs, fetched once per invocation (xe's own speed trick too).</summary>
public sealed class PoolView(XenApiClient api)
{
    private readonly Dictionary<string, Dictionary<string, Dictionary<string, object?>>> _byClass = new(StringComparer.Ordinal);

    public XenApiClient Api => api;

    public async Task<Dictionary<string, Dictionary<string, object?>>> AllAsync(string className, CancellationToken cancellationToken)
    {
        if (!_byClass.TryGetValue(className, out var records))
        {
            var raw = (Dictionary<string, object?>)(await api.InvokeAsync($"{className}.get_all_records", cancellationToken))!;
            records = raw.ToDictionary(kv => kv.Key, kv => (Dictionary<string, object?>)kv.Value!, StringComparer.Ordinal);
            _byClass[className] = records;
        }

        return records;
    }

    /// <summary>Loads the classes whose uuids a class's references point to.</summary>
    public async Task PreloadAsync(IEnumerable<string> classNames, CancellationToken cancellationToken)
    {
        foreach (var c in classNames)
        {
            await AllAsync(c, cancellationToken);
        }
    }

    public Dictionary<string, object?>? Find(string className, string reference) =>
        _byClass.TryGetValue(className, out var r) && r.TryGetValue(reference, out var record) ? record : null;

    /// <summary>A reference as xe prints it: the uuid of what it points to, or &lt;not in database&gt;.</summary>
    public string UuidOf(string className, object? reference)
    {
        var r = reference as string ?? "";
        if (OpaqueRef.IsNull(r))
        {
            return "<not in database>";
        }

        return Find(className, r)?["uuid"] as string ?? "<not in database>";
    }

    public void Invalidate() => _byClass.Clear();
}

public static class Printer
{
    /// <summary>Formats a value as xe prints it: maps "k: v; k2: v2", sets "a; b", enums in lower case.</summary>
    public static string Format(object? value, FieldType? type = null) => value switch
    {
        null => "",
        string s when type is FieldType.EnumOf => s.ToLowerInvariant(),
        string s => s,
        bool b => b ? "true" : "false",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => d.ToString(CultureInfo.InvariantCulture),
        DateTime dt => XenDateTime.Format(dt),
        IDictionary<string, object?> map => string.Join("; ", map.Select(kv => $"{kv.Key}: {Format(kv.Value)}")),
        System.Collections.IEnumerable list => string.Join("; ", list.Cast<object?>().Select(v => Format(v, type is FieldType.SetOf s ? s.Element : null))),
        _ => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "",
    };

    /// <summary>
    /// One record as xe prints it: the first parameter's name left-aligned, the others right-aligned, in a column four
    /// wider than the longest "name ( RO)" label, each followed by the value.
    /// </summary>
    public static string Record(IReadOnlyList<(string Name, string Access, string Value)> fields)
    {
        var labels = fields.Select(f => $"{f.Name} ({f.Access.PadLeft(3)})").ToList();
        var width = labels.Max(l => l.Length) + 4;
        var text = new System.Text.StringBuilder();
        for (var i = 0; i < fields.Count; i++)
        {
            var label = i == 0 ? labels[i].PadRight(width) : labels[i].PadLeft(width);
            text.Append(label).Append(": ").Append(fields[i].Value).Append('\n');
        }

        return text.ToString();
    }
}
