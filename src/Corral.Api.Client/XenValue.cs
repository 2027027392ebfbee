using System.Globalization;
using Corral.Model;

namespace Corral.Api.Client;

/// <summary>Reading the plain values a XenAPI call returns, with the XenAPI defaults for what is missing.</summary>
public static class XenValue
{
    public static string AsString(object? value) => value switch
    {
        null => "",
        string s => s,
        bool b => b ? "true" : "false",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => d.ToString(CultureInfo.InvariantCulture),
        _ => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "",
    };

    public static long AsLong(object? value) => value switch
    {
        long l => l,
        int i => i,
        double d => (long)d,
        string s when long.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l) => l,
        _ => 0,
    };

    public static double AsDouble(object? value) => value switch
    {
        double d => d,
        long l => l,
        int i => i,
        string s when double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) => d,
        _ => 0,
    };

    public static bool AsBool(object? value) => value switch
    {
        bool b => b,
        string s => s.Equals("true", StringComparison.OrdinalIgnoreCase),
        long l => l != 0,
        _ => false,
    };

    public static IReadOnlyList<object?> AsList(object? value) => value as IReadOnlyList<object?> ?? (value as List<object?>) ?? [];

    public static IReadOnlyList<string> AsStrings(object? value) => AsList(value).Select(AsString).ToList();

    /// <summary>A map in its stored order.</summary>
    public static IReadOnlyList<KeyValuePair<string, string>> AsMap(object? value) => value switch
    {
        IEnumerable<KeyValuePair<string, object?>> map => map.Select(kv => new KeyValuePair<string, string>(kv.Key, AsString(kv.Value))).ToList(),
        IEnumerable<KeyValuePair<string, string>> map => map.ToList(),
        _ => [],
    };

    public static IReadOnlyDictionary<string, object?> AsRecord(object? value) =>
        value as IReadOnlyDictionary<string, object?> ?? new Dictionary<string, object?>(StringComparer.Ordinal);

    public static bool IsNullRef(string? reference) => OpaqueRef.IsNull(reference);
}
