using Corral.Model;

namespace Corral.PoolDatabase;

/// <summary>
/// The pool's one source of truth. Every write is a transaction guarded by the revisions the writer read, so two
/// writers racing on one object never lose an update: the loser re-reads and retries (see <see cref="UpdateAsync"/>).
/// Derived fields (<see cref="DerivedFields"/>: reverse links, <c>host_metrics.live</c>, <c>allowed_operations</c>) are
/// not part of an object's stored state or of its revision: they are filled in on every read and in the change stream.
/// </summary>
public interface IPoolDatabase
{
    /// <summary>
    /// True if <paramref name="exception"/> means the database cannot be reached or has no quorum (rather than a bad
    /// request): the host is then in emergency mode, as a XenServer slave that has lost its master.
    /// </summary>
    bool IsUnavailable(Exception exception);

    /// <summary>The store's current revision; event tokens are revisions.</summary>
    Task<long> GetRevisionAsync(CancellationToken cancellationToken);

    Task<XenObject?> TryGetAsync(string className, string reference, CancellationToken cancellationToken);

    /// <exception cref="XenApiException">HANDLE_INVALID when no such object exists.</exception>
    Task<XenObject> GetAsync(string className, string reference, CancellationToken cancellationToken);

    Task<IReadOnlyList<XenObject>> GetAllAsync(string className, CancellationToken cancellationToken);

    /// <summary>How many objects of the class exist (event.from's <c>valid_ref_counts</c>), without reading them.</summary>
    Task<long> CountAsync(string className, CancellationToken cancellationToken);

    /// <summary>Looks an object up by its uuid field.</summary>
    Task<XenObject?> FindByUuidAsync(string className, string uuid, CancellationToken cancellationToken);

    /// <summary>Finds which class an object reference belongs to, or null.</summary>
    Task<string?> FindClassOfAsync(string reference, CancellationToken cancellationToken);

    /// <summary>Applies a set of creates, updates and deletes atomically, or none of them.</summary>
    /// <exception cref="ConcurrentUpdateException">An object changed since it was read.</exception>
    Task<long> CommitAsync(PoolTransaction transaction, CancellationToken cancellationToken);

    /// <summary>
    /// Writes an object's <c>allowed_operations</c> (derived: a key of its own, <see cref="PoolKeys.AllowedKey"/>), not
    /// guarded by the object's revision, so that its writers never lose a race to it. <paramref name="sourceRevision"/> is
    /// the revision the set was computed from (every change up to it was seen): a set computed from an older revision
    /// than the stored one is refused, so a late writer cannot leave a stale set. Nothing is written when the stored set
    /// is the same. Returns the revision written, or null when nothing was.
    /// </summary>
    /// <exception cref="XenApiException">HANDLE_INVALID when the object does not exist (its key goes with it).</exception>
    Task<long?> SetAllowedOperationsAsync(string className, string reference, IReadOnlyCollection<string> operations, long sourceRevision,
        CancellationToken cancellationToken);

    /// <summary>
    /// Reads the objects, lets <paramref name="mutate"/> change them, and commits guarded by the revisions read;
    /// on a conflict it reads again and calls <paramref name="mutate"/> again. The mutation must be free of side effects.
    /// </summary>
    Task<long> UpdateAsync(IReadOnlyList<(string ClassName, string Reference)> objects,
        Action<IReadOnlyList<XenObject>, PoolTransaction> mutate, CancellationToken cancellationToken);

    /// <summary>
    /// Changes from just after <paramref name="afterRevision"/> on, in revision order, in batches that always hold
    /// every change of a revision (one transaction may change several objects).
    /// </summary>
    /// <exception cref="XenApiException">EVENTS_LOST when that history has been compacted away.</exception>
    IAsyncEnumerable<IReadOnlyList<PoolChange>> WatchAsync(long afterRevision, CancellationToken cancellationToken);

    /// <summary>Hosts, VM claims and elections ride on leases: keys that vanish when their holder stops renewing.</summary>
    ILeaseStore Leases { get; }
}

/// <summary>One object added, changed or removed at a revision. <see cref="Object"/> holds the new state, or the last one for deletes.</summary>
public sealed record PoolChange(long Revision, ChangeKind Kind, XenObject Object)
{
    /// <summary>
    /// Set when the change is of a derived field's own key (<see cref="DerivedFields"/>), not of the object: a
    /// <see cref="ChangeKind.Mod"/> whose <see cref="Object"/> is the object as read then, with that field's new value.
    /// </summary>
    public string? DerivedField { get; init; }
}

public enum ChangeKind
{
    Add,
    Mod,
    Del,
}

/// <summary>Raised when a guarded write lost the race; <see cref="IPoolDatabase.UpdateAsync"/> retries on it.</summary>
public sealed class ConcurrentUpdateException(string message) : Exception(message);
