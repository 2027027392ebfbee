using System.Collections.Concurrent;

namespace Corral.HighAvailability;

/// <summary>
/// Every host's storage heartbeat as one host has watched it: the last counter read and when this host first read
/// that value. A host that only just started watching counts conservatively, from its first read.
/// </summary>
public sealed class HeartbeatWatch
{
    private readonly ConcurrentDictionary<string, (long Counter, DateTime SinceUtc)> _seen = new(StringComparer.Ordinal);

    public void Observe(string hostUuid, long counter, DateTime nowUtc)
    {
        if (!_seen.TryGetValue(hostUuid, out var seen) || seen.Counter != counter)
        {
            _seen[hostUuid] = (counter, nowUtc);
        }
    }

    /// <summary>How long the host's counter has stood still as watched; null when it has not been read yet.</summary>
    public TimeSpan? StillFor(string hostUuid, DateTime nowUtc) => _seen.TryGetValue(hostUuid, out var seen) ? nowUtc - seen.SinceUtc : null;
}
