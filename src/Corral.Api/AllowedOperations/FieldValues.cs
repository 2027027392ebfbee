namespace Corral.Api.AllowedOperations;

/// <summary>Compares field values in their canonical form (scalars, lists, string-keyed maps), deeply.</summary>
public static class FieldValues
{
    public static bool Same(object? a, object? b) => (a, b) switch
    {
        (null, null) => true,
        (IDictionary<string, object?> x, IDictionary<string, object?> y) =>
            x.Count == y.Count && x.All(kv => y.TryGetValue(kv.Key, out var other) && Same(kv.Value, other)),
        (IList<object?> x, IList<object?> y) => x.Count == y.Count && x.Zip(y).All(p => Same(p.First, p.Second)),
        _ => Equals(a, b),
    };
}
