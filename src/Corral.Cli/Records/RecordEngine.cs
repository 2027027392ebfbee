using Corral.Cli.Api;
using Corral.Api.Client;

namespace Corral.Cli.Records;

/// <summary>
/// Evaluates xe parameters over records: loads what their values need, filters records the way xe's
/// <c>filter_records_on_fields</c> does, and builds the (label, value) rows the printer prints.
/// </summary>
public sealed class RecordEngine(PoolCache cache, XenApiSession? session)
{
    public const string ExpensivePlaceholder = "<expensive field>";

    public PoolCache Cache => cache;

    public XenApiSession? Session => session;

    public FieldContext Context(XenRecord record) => new(record, cache, session);

    public Task<string?> ValueAsync(XenRecord record, XeField field, CancellationToken cancellationToken) =>
        field.ValueAsync(Context(record), cancellationToken);

    /// <summary>Loads the classes the fields read for these records (only those some record actually points to).</summary>
    public async Task PrepareAsync(IReadOnlyCollection<XenRecord> records, IEnumerable<XeField> fields, CancellationToken cancellationToken)
    {
        var wanted = new List<string>();
        foreach (var need in fields.SelectMany(f => f.Needs))
        {
            if (wanted.Contains(need.ClassName) || cache.IsLoaded(need.ClassName))
            {
                continue;
            }

            if (need.ViaKey is null || records.Any(r => PointsSomewhere(r.Raw(need.ViaKey))))
            {
                wanted.Add(need.ClassName);
            }
        }

        await cache.LoadAsync(wanted, cancellationToken);
    }

    private static bool PointsSomewhere(object? value) => value switch
    {
        string s => !XenValue.IsNullRef(s),
        IEnumerable<KeyValuePair<string, object?>> map => map.Any(kv => PointsSomewhere(kv.Value)),
        System.Collections.IEnumerable list => list.Cast<object?>().Any(PointsSomewhere),
        _ => false,
    };

    /// <summary>
    /// xe's filtering on <c>key=value</c> pairs: a parameter's printed value must equal the value; <c>map:key=value</c>
    /// (or the old <c>map-key=value</c>) looks a key up in a map parameter; <c>set:contains=value</c> looks for a member.
    /// Nothing to filter yields nothing, without checking the names.
    /// </summary>
    public async Task<List<XenRecord>> FilterAsync(XeClass cls, IReadOnlyList<XenRecord> records, IEnumerable<KeyValuePair<string, string>> filters, CancellationToken cancellationToken)
    {
        var current = records.ToList();
        foreach (var (key, value) in filters)
        {
            if (current.Count == 0)
            {
                return current;
            }

            var (field, kind) = Resolve(cls, key);
            await PrepareAsync(current, [field], cancellationToken);
            var next = new List<XenRecord>();
            foreach (var record in current)
            {
                if (await MatchesAsync(record, field, kind, key, value, cancellationToken))
                {
                    next.Add(record);
                }
            }

            current = next;
        }

        return current;
    }

    private enum FilterKind
    {
        Normal,
        Map,
        Set,
    }

    /// <summary>xe's <c>get_field_type</c>: which parameter a filter key names, and how.</summary>
    private static (XeField Field, FilterKind Kind) Resolve(XeClass cls, string key)
    {
        if (cls.Find(key) is { } exact)
        {
            return (exact, FilterKind.Normal);
        }

        var colon = key.IndexOf(':', StringComparison.Ordinal);
        if (colon >= 0)
        {
            var field = cls.Find(key[..colon]) ?? throw new XeFailure($"Unknown field '{key}'");
            return field.IsSet ? (field, FilterKind.Set)
                : field.IsMap ? (field, FilterKind.Map)
                : throw new XeFailure($"Field '{field.Name}' is not a set or map");
        }

        // The old syntax, map-name-key=value: the longest map (then set) whose name and a dash begin the key.
        var map = cls.Fields.Where(f => f.IsMap && key.StartsWith(f.Name + "-", StringComparison.Ordinal)).MaxBy(f => f.Name.Length);
        if (map is not null)
        {
            return (map, FilterKind.Map);
        }

        var set = cls.Fields.Where(f => f.IsSet && key.StartsWith(f.Name + "-", StringComparison.Ordinal)).MaxBy(f => f.Name.Length);
        return set is not null ? (set, FilterKind.Set) : throw new XeFailure($"Unknown field '{key}'");
    }

    private async Task<bool> MatchesAsync(XenRecord record, XeField field, FilterKind kind, string key, string value, CancellationToken cancellationToken)
    {
        var context = Context(record);
        switch (kind)
        {
            case FilterKind.Normal:
                var actual = await field.ValueAsync(context, cancellationToken);
                return actual is not null && (field.CaseInsensitive
                    ? string.Equals(actual, value, StringComparison.OrdinalIgnoreCase)
                    : actual == value);
            case FilterKind.Map:
                var mapKey = key[(field.Name.Length + 1)..];
                var comparison = field.CaseInsensitive ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
                foreach (var (k, v) in field.GetMap!(context))
                {
                    if (string.Equals(k, mapKey, comparison))
                    {
                        return string.Equals(v, value, comparison);
                    }
                }

                return false;
            default:
                if (key[(field.Name.Length + 1)..] != "contains")
                {
                    throw new XeFailure("Invalid syntax for set filtering (should be set-param:contains=key)");
                }

                var members = field.Fetch is null
                    ? field.GetSet!(context)
                    : ((await field.ValueAsync(context, cancellationToken)) ?? "").Split("; ");
                var setComparison = field.CaseInsensitive ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
                return members.Any(m => string.Equals(m, value, setComparison));
        }
    }

    /// <summary>
    /// The printed rows of a record: the chosen fields (hidden ones left out), in the class's order. In a list an
    /// expensive field shows as &lt;expensive field&gt;; a value the server cannot give leaves its field out.
    /// </summary>
    public async Task<IReadOnlyList<KeyValuePair<string, string>>> RowAsync(XenRecord record, IEnumerable<XeField> fields, bool inList, CancellationToken cancellationToken)
    {
        var row = new List<KeyValuePair<string, string>>();
        var context = Context(record);
        foreach (var field in fields)
        {
            if (field.Hidden)
            {
                continue;
            }

            var value = inList && field.Expensive ? ExpensivePlaceholder : await field.ValueAsync(context, cancellationToken);
            if (value is not null)
            {
                row.Add(new(field.Label, value));
            }
        }

        return row;
    }

    /// <summary>xe's <c>select_fields</c>: <c>params=all</c> is every field, <c>params=a,b</c> those (in the class's order).</summary>
    public static IReadOnlyList<XeField> Select(XeClass cls, string? paramsValue, IReadOnlyList<string> defaults)
    {
        var names = paramsValue is null ? defaults : paramsValue == "all" ? [] : paramsValue.Split(',');
        return names.Count == 0 ? cls.Fields : cls.Fields.Where(f => names.Contains(f.Name)).ToList();
    }
}
