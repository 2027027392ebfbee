using System.Collections.Concurrent;

namespace Corral.HighAvailability;

/// <summary>
/// Every host's storage heartbeat as one host has watched it: the last counter read and when this host first read
/// that value, and when it last managed to read the heartbeats at all. A counter counts as standing still only up to
/// that last read: a watcher cut from the storage has no evidence that anyone stopped, and once that read is older than
/// the freshness asked for it has no evidence at all (the host whose heartbeat stood still before the watcher was cut
/// may have beaten since). A host that only just started watching counts conservatively, from its first read. Times are
/// the watcher's monotonic clock's.
/// </summary>
public sealed class HeartbeatWatch
{
    private readonly ConcurrentDictionary<string, (long Counter, TimeSpan Since)> _seen = new(StringComparer.Ordinal);
    private readonly Lock _scans = new();
    private TimeSpan? _firstScan;
    private TimeSpan? _lastScan;

    public void Observe(string hostUuid, long counter, TimeSpan now)
    {
        if (!_seen.TryGetValue(hostUuid, out var seen) || seen.Counter != counter)
        {
            _seen[hostUuid] = (counter, now);
        }
    }

    /// <summary>Every heartbeat was read at <paramref name="now"/> (call after the <see cref="Observe"/>s of one read).</summary>
    public void Scanned(TimeSpan now)
    {
        lock (_scans)
        {
            _firstScan ??= now;
            _lastScan = now;
        }
    }

    /// <summary>
    /// How long the host's counter has stood still as watched, up to the last successful read; for a host never seen,
    /// how long the heartbeats have been read without it. Null when this host has not read the heartbeats yet, or not
    /// within <paramref name="freshFor"/> before <paramref name="now"/>.
    /// </summary>
    public TimeSpan? StillFor(string hostUuid, TimeSpan now, TimeSpan freshFor)
    {
        TimeSpan first, last;
        lock (_scans)
        {
            if (_lastScan is not { } lastScan || _firstScan is not { } firstScan || now - lastScan > freshFor)
            {
                return null;
            }

            (first, last) = (firstScan, lastScan);
        }

        var since = _seen.TryGetValue(hostUuid, out var seen) ? seen.Since : first;
        return last > since ? last - since : TimeSpan.Zero;
    }
}
