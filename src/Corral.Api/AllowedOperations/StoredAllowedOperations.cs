using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Api.AllowedOperations;

/// <summary>
/// What the pool database holds as each object's <c>allowed_operations</c> (its own key, see <see cref="DerivedFields"/>),
/// as far as the master's service knows, with the revision it is known at: read with the index, then followed from
/// the changes of those keys and the service's own writes, a change older than what is known being ignored (the
/// service's own write is known before its change comes back). Not thread-safe: one owner.
/// </summary>
public sealed class StoredAllowedOperations
{
    private readonly Dictionary<(string Class, string Ref), (HashSet<string> Operations, long Revision)> _known = [];

    /// <summary>The sets the objects of <paramref name="index"/> were read with, known at <paramref name="revision"/>.</summary>
    public static StoredAllowedOperations Of(PoolObjectIndex index, long revision)
    {
        var stored = new StoredAllowedOperations();
        foreach (var obj in AllowedOperationsCalculator.Classes.SelectMany(index.All))
        {
            stored._known[(obj.Class, obj.Ref)] = (obj.GetSet(DerivedFields.AllowedOperations).ToHashSet(StringComparer.Ordinal), revision);
        }

        return stored;
    }

    /// <summary>True when <paramref name="operations"/> is what the object is known to hold (an unknown object holds none).</summary>
    public bool Holds(string className, string reference, IReadOnlyCollection<string> operations) =>
        _known.TryGetValue((className, reference), out var known)
            ? known.Operations.SetEquals(operations)
            : operations.Count == 0;

    /// <summary>
    /// Takes in a change of an object's allowed-operations key. True when it is news (newer than what is known and a
    /// different set): then someone else wrote it, or it is an older write of this service's arriving late.
    /// </summary>
    public bool Observe(PoolChange change)
    {
        var key = (change.Object.Class, change.Object.Ref);
        if (_known.TryGetValue(key, out var known) && known.Revision >= change.Revision)
        {
            return false;
        }

        var operations = change.Object.GetSet(DerivedFields.AllowedOperations).ToHashSet(StringComparer.Ordinal);
        _known[key] = (operations, change.Revision);
        return known.Operations is null || !known.Operations.SetEquals(operations);
    }

    /// <summary>Records a set this service wrote at <paramref name="revision"/>.</summary>
    public void Written(string className, string reference, IEnumerable<string> operations, long revision) =>
        _known[(className, reference)] = (operations.ToHashSet(StringComparer.Ordinal), revision);

    public void Forget(string className, string reference) => _known.Remove((className, reference));
}
