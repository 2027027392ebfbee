namespace Corral.Model;

/// <summary>One object of the pool database: class, reference, and fields keyed by their XenAPI names.</summary>
/// <remarks>
/// Fields are held by name rather than as C# properties, as xapi's own database holds them: the API, the CLI and the
/// event stream all work field by field, and a class gains fields without every layer changing.
/// </remarks>
public sealed class XenObject
{
    public XenObject(ClassSchema schema, string reference, IDictionary<string, object?> fields, long modRevision = 0)
    {
        Schema = schema;
        Ref = reference;
        Fields = new Dictionary<string, object?>(fields, StringComparer.Ordinal);
        ModRevision = modRevision;
    }

    public ClassSchema Schema { get; }

    public string Class => Schema.Name;

    public string Ref { get; }

    /// <summary>The pool database revision that last wrote this object; writes are guarded by it.</summary>
    public long ModRevision { get; }

    public Dictionary<string, object?> Fields { get; }

    public string Uuid => GetString("uuid");

    public object? this[string field]
    {
        get => Fields.TryGetValue(field, out var v) ? v : Schema.Get(field).NewDefault();
        set => Fields[field] = Schema.Get(field).Type.Coerce(value);
    }

    /// <summary>Reads a field through its generated handle: <c>vm.Get(XenApi.VM.PowerState)</c>.</summary>
    public T Get<T>(Field<T> field) => field.Read(this[field.Name]);

    /// <summary>Writes a field through its generated handle: <c>vm.Set(XenApi.VM.PowerState, VmPowerState.Running)</c>.</summary>
    public void Set<T>(Field<T> field, T value) => this[field.Name] = field.Write(value);

    public string GetString(string field) => (string?)this[field] ?? "";

    public long GetInt(string field) => (long)(this[field] ?? 0L);

    public double GetFloat(string field) => (double)(this[field] ?? 0.0);

    public bool GetBool(string field) => (bool)(this[field] ?? false);

    public DateTime GetDateTime(string field) => (DateTime)(this[field] ?? XenDateTime.Epoch);

    public List<string> GetSet(string field) =>
        ((IEnumerable<object?>?)this[field] ?? []).Select(x => x?.ToString() ?? "").ToList();

    public Dictionary<string, string> GetStringMap(string field) =>
        ((IDictionary<string, object?>?)this[field] ?? new Dictionary<string, object?>())
        .ToDictionary(kv => kv.Key, kv => kv.Value?.ToString() ?? "");

    /// <summary>A deep copy that callers may change without touching this instance.</summary>
    public XenObject Clone() =>
        new(Schema, Ref, Fields.ToDictionary(kv => kv.Key, kv => Schema.Find(kv.Key)?.Type.Coerce(kv.Value) ?? kv.Value), ModRevision);

    /// <summary>
    /// True when every field but <paramref name="ignored"/> has the same value in both (sets in order, maps by content):
    /// a writer that recomputes a record writes it only when something changed.
    /// </summary>
    public bool SameFieldsAs(XenObject other, params string[] ignored)
    {
        ArgumentNullException.ThrowIfNull(other);
        return Schema.Fields.All(f => ignored.Contains(f.Name, StringComparer.Ordinal)
                                      || System.Text.Json.Nodes.JsonNode.DeepEquals(f.Type.ToJson(this[f.Name]), f.Type.ToJson(other[f.Name])));
    }

    /// <summary>The full record as the API returns it: every schema field, defaults filled in.</summary>
    public Dictionary<string, object?> ToRecord()
    {
        var record = new Dictionary<string, object?>(Schema.Fields.Count, StringComparer.Ordinal);
        foreach (var field in Schema.Fields)
        {
            record[field.Name] = this[field.Name];
        }

        return record;
    }

    public override string ToString() => $"{Class} {Ref} ({Uuid})";
}
