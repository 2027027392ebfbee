using System.Collections.Concurrent;

namespace Corral.HighAvailability;

/// <summary>
/// Every host's storage heartbeat as one host has watched it: the last counter read and when this host first read
/// that value, and when it last managed to read the heartbeats at all. A counter counts as standing still only up to
/// that last read: a watcher cut from the storage has no evidence that anyone stopped. A host that only just started
/// watching counts conservatively, from its first read.
/// </summary>
public sealed class HeartbeatWatch
{
    private readonly ConcurrentDictionary<string, (long Counter, DateTime SinceUtc)> _seen = new(StringComparer.Ordinal);
    private readonly Lock _scans = new();
    private DateTime? _firstScanUtc;
    private DateTime? _lastScanUtc;

    public void Observe(string hostUuid, long counter, DateTime nowUtc)
    {
        if (!_seen.TryGetValue(hostUuid, out var seen) || seen.Counter != counter)
        {
            _seen[hostUuid] = (counter, nowUtc);
        }
    }

    /// <summary>Every heartbeat was read at <paramref name="nowUtc"/> (call after the <see cref="Observe"/>s of one read).</summary>
    public void Scanned(DateTime nowUtc)
    {
        lock (_scans)
        {
            _firstScanUtc ??= nowUtc;
            _lastScanUtc = nowUtc;
        }
    }

    /// <summary>
    /// How long the host's counter has stood still as watched, up to the last successful read; for a host never seen,
    /// how long the heartbeats have been read without it. Null when this host has not read the heartbeats yet.
    /// </summary>
    public TimeSpan? StillFor(string hostUuid)
    {
        DateTime first, last;
        lock (_scans)
        {
            if (_lastScanUtc is not { } lastScan || _firstScanUtc is not { } firstScan)
            {
                return null;
            }

            (first, last) = (firstScan, lastScan);
        }

        var since = _seen.TryGetValue(hostUuid, out var seen) ? seen.SinceUtc : first;
        return last > since ? last - since : TimeSpan.Zero;
    }
}
