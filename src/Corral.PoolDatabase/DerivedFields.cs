using Corral.Model;

namespace Corral.PoolDatabase;

/// <summary>
/// The class invariant of the pool database's objects: some fields are derived state, never stored in the object's own
/// key (<see cref="PoolKeys.Object"/>) and so never part of its revision guard. Writing them cannot make a writer of the
/// object lose its race, and a writer of the object cannot store a stale value of them (whatever it sends is dropped).
/// They are filled in on every read (<see cref="IPoolDatabase.TryGetAsync"/>, <c>GetAllAsync</c>, <c>FindByUuidAsync</c>)
/// and in the change stream's snapshots:
/// <list type="bullet">
/// <item>Reverse links (<see cref="ReverseLink"/>: <c>VM.VBDs</c>, <c>SR.VDIs</c>...): computed from the forward links.</item>
/// <item><c>host_metrics.live</c>: true exactly while the host's leased key <see cref="PoolKeys.LiveKey"/> exists; its
/// appearing or expiring is delivered as a <see cref="ChangeKind.Mod"/> of the <c>host_metrics</c>.</item>
/// <item><c>allowed_operations</c> (every class that has the field): the pool master's computation, under
/// <see cref="PoolKeys.AllowedKey"/>, written by <see cref="IPoolDatabase.SetAllowedOperationsAsync"/> only and removed
/// in the transaction that deletes the object. An object without that key has none (as xapi's objects start). A
/// change of the key is delivered as a <see cref="ChangeKind.Mod"/> of the object carrying the new set.</item>
/// </list>
/// A change delivered for a derived key rather than for the object names the field in <see cref="PoolChange.DerivedField"/>.
/// </summary>
public static class DerivedFields
{
    public const string AllowedOperations = "allowed_operations";

    public const string Live = "live";

    /// <summary>True when objects of the class carry an <c>allowed_operations</c> kept under its own key.</summary>
    public static bool HasAllowedOperations(ClassSchema schema) => schema.Find(AllowedOperations) is not null;

    /// <summary>The derived fields of a class: those an object's own key never holds.</summary>
    public static IReadOnlySet<string> Of(ClassSchema schema)
    {
        var fields = ReverseLink.Of(schema.Name).Select(l => l.Field).ToHashSet(StringComparer.Ordinal);
        if (schema.Name == XenClasses.HostMetrics)
        {
            fields.Add(Live);
        }

        if (HasAllowedOperations(schema))
        {
            fields.Add(AllowedOperations);
        }

        return fields;
    }
}
