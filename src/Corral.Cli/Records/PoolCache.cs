using Corral.Cli.Api;
using Corral.Api.Client;
using Corral.Model;

namespace Corral.Cli.Records;

/// <summary>
/// The records of the classes a command reads, fetched once per invocation with <c>&lt;class&gt;.get_all_records</c>,
/// so that references print as the uuid (or name) of what they point to without a call per reference. A class the
/// server does not know (<c>MESSAGE_METHOD_UNKNOWN</c>) reads as empty: its references print as
/// <c>&lt;not in database&gt;</c>, as xe prints a reference it cannot resolve.
/// </summary>
public sealed class PoolCache
{
    public const string NotInDatabase = "<not in database>";

    private readonly Func<string, CancellationToken, Task<IReadOnlyList<XenRecord>>>? _loader;
    private readonly Dictionary<string, ClassRecords> _classes = new(StringComparer.Ordinal);

    /// <summary>A cache that loads from the server through <paramref name="session"/>.</summary>
    public PoolCache(XenApiSession session) => _loader = (cls, ct) => LoadFromServerAsync(session, cls, ct);

    /// <summary>A cache holding only what is <see cref="Seed"/>ed (pure logic, no server).</summary>
    public PoolCache()
    {
    }

    public void Seed(string className, IEnumerable<XenRecord> records) => _classes[className] = new ClassRecords(records);

    public bool IsLoaded(string className) => _classes.ContainsKey(className);

    public void Forget(string className) => _classes.Remove(className);

    public void Clear() => _classes.Clear();

    public async Task<IReadOnlyList<XenRecord>> AllAsync(string className, CancellationToken cancellationToken)
    {
        if (!_classes.TryGetValue(className, out var records))
        {
            var loaded = _loader is null ? [] : await _loader(className, cancellationToken);
            records = new ClassRecords(loaded);
            _classes[className] = records;
        }

        return records.List;
    }

    public async Task LoadAsync(IEnumerable<string> classNames, CancellationToken cancellationToken)
    {
        foreach (var c in classNames.Distinct(StringComparer.Ordinal))
        {
            await AllAsync(c, cancellationToken);
        }
    }

    /// <summary>The records of a class already loaded (none if it is not).</summary>
    public IReadOnlyList<XenRecord> Loaded(string className) => _classes.TryGetValue(className, out var r) ? r.List : [];

    public XenRecord? Find(string className, string? reference) =>
        reference is not null && _classes.TryGetValue(className, out var r) && r.ByRef.TryGetValue(reference, out var record) ? record : null;

    /// <summary>The object a reference points to, in whichever loaded class holds it.</summary>
    public XenRecord? FindAnywhere(string reference)
    {
        foreach (var records in _classes.Values)
        {
            if (records.ByRef.TryGetValue(reference, out var record))
            {
                return record;
            }
        }

        return null;
    }

    /// <summary>xe's <c>get_uuid_from_ref</c>: the uuid of what a reference points to, else &lt;not in database&gt;.</summary>
    public string UuidOf(string className, string? reference) => Find(className, reference)?.Uuid ?? NotInDatabase;

    /// <summary>xe's <c>get_name_from_ref</c>: the name-label of what a reference points to, else &lt;not in database&gt;.</summary>
    public string NameOf(string className, string? reference) =>
        Find(className, reference) is { } r && r.Has("name_label") ? r.Str("name_label") : NotInDatabase;

    private static async Task<IReadOnlyList<XenRecord>> LoadFromServerAsync(XenApiSession session, string className, CancellationToken cancellationToken)
    {
        object? all;
        try
        {
            all = await session.CallAsync($"{className}.get_all_records", cancellationToken);
        }
        catch (XenApiException ex) when (XeField.IsUnoffered(ex))
        {
            return [];
        }

        return XenValue.AsRecord(all).Select(kv => new XenRecord(className, kv.Key, XenValue.AsRecord(kv.Value))).ToList();
    }

    private sealed class ClassRecords
    {
        public ClassRecords(IEnumerable<XenRecord> records)
        {
            List = records.ToList();
            ByRef = new Dictionary<string, XenRecord>(StringComparer.Ordinal);
            foreach (var r in List)
            {
                ByRef[r.Ref] = r;
            }
        }

        public List<XenRecord> List { get; }

        public Dictionary<string, XenRecord> ByRef { get; }
    }
}
