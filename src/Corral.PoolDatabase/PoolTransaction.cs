using Corral.Model;

namespace Corral.PoolDatabase;

/// <summary>
/// A batch of writes applied all together. Updates and deletes carry the revision the writer read; a create carries
/// the guarantee that the reference is new. Leased keys let a write depend on a holder being alive.
/// </summary>
public sealed class PoolTransaction
{
    private readonly List<PoolWrite> _writes = [];
    private readonly List<(string Key, long ExpectedRevision)> _guards = [];
    private readonly List<KeyWrite> _keyWrites = [];

    public IReadOnlyList<PoolWrite> Writes => _writes;

    /// <summary>Extra conditions: raw keys that must have the given mod revision (0: must not exist).</summary>
    public IReadOnlyList<(string Key, long ExpectedRevision)> Guards => _guards;

    /// <summary>Raw keys written with the objects (operation records, ownership claims).</summary>
    public IReadOnlyList<KeyWrite> KeyWrites => _keyWrites;

    public bool IsEmpty => _writes.Count == 0 && _keyWrites.Count == 0;

    /// <summary>Creates an object with a new reference and uuid; fields not given take the schema's defaults.</summary>
    public XenObject Create(ClassSchema schema, IDictionary<string, object?>? fields = null, string? reference = null)
    {
        var values = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var field in schema.Fields)
        {
            values[field.Name] = field.NewDefault();
        }

        foreach (var (name, value) in fields ?? new Dictionary<string, object?>())
        {
            var field = schema.Find(name) ?? throw new XenApiException(ErrorCodes.InvalidValue, name, "no such field");
            values[name] = field.Type.Coerce(value);
        }

        if (string.IsNullOrEmpty((string?)values["uuid"]))
        {
            values["uuid"] = OpaqueRef.NewUuid();
        }

        var created = new XenObject(schema, reference ?? OpaqueRef.New(), values);
        _writes.Add(new PoolWrite(PoolWriteKind.Create, created));
        return created;
    }

    /// <summary>Writes the object back, guarded by the revision it was read at.</summary>
    public void Update(XenObject changed) => _writes.Add(new PoolWrite(PoolWriteKind.Update, changed));

    public void Delete(XenObject existing) => _writes.Add(new PoolWrite(PoolWriteKind.Delete, existing));

    /// <summary>Requires a raw key to be at <paramref name="expectedRevision"/> (0: absent) for the batch to apply.</summary>
    public void Require(string key, long expectedRevision) => _guards.Add((key, expectedRevision));

    /// <summary>Writes a raw key in the same batch; bound to <paramref name="leaseId"/> when not 0.</summary>
    public void PutKey(string key, string value, long leaseId = 0) => _keyWrites.Add(new KeyWrite(key, value, leaseId));

    public void DeleteKey(string key) => _keyWrites.Add(new KeyWrite(key, null, 0));
}

/// <summary>A raw key put (value set) or deleted (value null) in a <see cref="PoolTransaction"/>.</summary>
public sealed record KeyWrite(string Key, string? Value, long LeaseId);

public enum PoolWriteKind
{
    Create,
    Update,
    Delete,
}

public sealed record PoolWrite(PoolWriteKind Kind, XenObject Object);
