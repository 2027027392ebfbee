namespace Corral.PoolDatabase;

/// <summary>
/// How a lease holder renews and how long it may count on its lease, in one place for the etcd client and the HA
/// simulation. etcd decides expiry on its leader's clock, no earlier than the TTL after it received the keepalive, and
/// a leader change only extends leases; so the holder may count on the lease until the send time of its last
/// acknowledged keepalive plus the TTL, less a margin for clock drift.
/// </summary>
public static class LeaseTiming
{
    /// <summary>After a failed keepalive stream, the wait before a new one.</summary>
    public static readonly TimeSpan ReconnectDelay = TimeSpan.FromMilliseconds(200);

    public static DateTime SafeUntil(DateTime keepaliveSentUtc, TimeSpan grantedTtl, TimeSpan margin) => keepaliveSentUtc + grantedTtl - margin;

    /// <summary>The same on the holder's monotonic clock (<see cref="MonotonicTime"/>), which a wall-clock step cannot move.</summary>
    public static TimeSpan SafeUntil(TimeSpan keepaliveSent, TimeSpan grantedTtl, TimeSpan margin) => keepaliveSent + grantedTtl - margin;

    /// <summary>Keepalives go every quarter TTL (at least 200 ms apart).</summary>
    public static TimeSpan KeepAliveInterval(TimeSpan ttl) => TimeSpan.FromMilliseconds(Math.Max(200, ttl.TotalMilliseconds / 4));

    /// <summary>
    /// Short: a stream to a member whose leader just died can hang; a new one reaches the new leader (elected within
    /// ~1.5 s) well before the lease's safe time runs out.
    /// </summary>
    public static TimeSpan AckTimeout(TimeSpan ttl, TimeSpan requestTimeout) =>
        TimeSpan.FromMilliseconds(Math.Min(requestTimeout.TotalMilliseconds, Math.Max(500, ttl.TotalMilliseconds / 4)));
}
