namespace Corral.PoolDatabase;

/// <summary>
/// Keys bound to a lease: they exist while their holder keeps the lease alive and vanish when it stops. Host liveness
/// (<c>host_metrics.live</c>), VM ownership claims and the master election are built on these.
/// </summary>
public interface ILeaseStore
{
    /// <summary>Grants a lease and keeps it alive in the background until the returned handle is disposed, a keepalive every quarter TTL.</summary>
    Task<ILease> AcquireAsync(TimeSpan ttl, CancellationToken cancellationToken) =>
        AcquireAsync(ttl, LeaseTiming.KeepAliveInterval(ttl), cancellationToken);

    /// <summary>Grants a lease and keeps it alive in the background, a keepalive every <paramref name="keepAliveEvery"/>.</summary>
    Task<ILease> AcquireAsync(TimeSpan ttl, TimeSpan keepAliveEvery, CancellationToken cancellationToken);

    /// <summary>
    /// Takes over a lease this host already holds (granted by an earlier generation of the agent in the same process)
    /// and keeps it alive from now on, a keepalive every <paramref name="keepAliveEvery"/>, so that the keys on it never
    /// vanish. Null when it has expired meanwhile.
    /// </summary>
    Task<ILease?> ResumeAsync(long leaseId, TimeSpan keepAliveEvery, CancellationToken cancellationToken);

    /// <summary>Creates <paramref name="key"/> under the lease if it does not exist yet. False when someone holds it.</summary>
    Task<bool> TryClaimAsync(ILease lease, string key, string value, CancellationToken cancellationToken);

    /// <summary>Writes <paramref name="key"/> under the lease whatever it held before.</summary>
    Task PutAsync(ILease lease, string key, string value, CancellationToken cancellationToken);

    /// <summary>Writes a key that outlives any holder (persisted operation state, credentials).</summary>
    Task<long> PutDurableAsync(string key, string value, CancellationToken cancellationToken);

    /// <summary>Puts and deletes of keys under <paramref name="prefix"/> after <paramref name="afterRevision"/>.</summary>
    IAsyncEnumerable<KeyChange> WatchPrefixAsync(string prefix, long afterRevision, CancellationToken cancellationToken);

    Task<string?> GetValueAsync(string key, CancellationToken cancellationToken);

    /// <summary>A key's value and mod revision (null and 0 when absent), for a guarded write that depends on it.</summary>
    Task<(string? Value, long Revision)> GetWithRevisionAsync(string key, CancellationToken cancellationToken);

    /// <summary>All keys under a prefix with their values.</summary>
    Task<IReadOnlyDictionary<string, string>> GetPrefixAsync(string prefix, CancellationToken cancellationToken);

    Task<bool> DeleteAsync(string key, CancellationToken cancellationToken);

    /// <summary>Deletes <paramref name="key"/> only if it still holds <paramref name="expectedValue"/>.</summary>
    Task<bool> DeleteIfValueAsync(string key, string expectedValue, CancellationToken cancellationToken);

    /// <summary>
    /// Revokes the lease <paramref name="key"/> is bound to, if the key still holds <paramref name="expectedValue"/>:
    /// every key on that lease vanishes at once, as when its holder's keepalives stop. Only for a holder known dead (a
    /// host its fence agent powered off): a live holder would lose its liveness, master key and VM claims under it.
    /// False when the key is gone, holds another value, has no lease, or the lease ended meanwhile.
    /// </summary>
    Task<bool> RevokeHolderAsync(string key, string expectedValue, CancellationToken cancellationToken);
}

/// <summary>A raw key written (value set) or deleted (value null).</summary>
public sealed record KeyChange(long Revision, string Key, string? Value);

public interface ILease : IAsyncDisposable
{
    long Id { get; }

    TimeSpan Ttl { get; }

    /// <summary>
    /// Until when the holder may count on the lease, on this host's monotonic clock (<see cref="MonotonicTime"/>): the
    /// send time of the last acknowledged keepalive plus the TTL, less a margin. Past it, the holder must act as if the
    /// lease were gone. A step of the wall clock changes nothing.
    /// </summary>
    TimeSpan SafeUntil { get; }

    /// <summary>Cancelled when the lease is known lost (expired, revoked, or not renewed in time).</summary>
    CancellationToken Lost { get; }
}
