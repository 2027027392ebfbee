using System.Diagnostics;

namespace Corral.PoolDatabase;

/// <summary>
/// This host's monotonic clock (CLOCK_MONOTONIC on Linux: time since boot, the same in every process of the host,
/// never stepped by NTP or an administrator). Lease safety is counted on it, never on the wall clock.
/// </summary>
public static class MonotonicTime
{
    public static TimeSpan Now => Stopwatch.GetElapsedTime(0);
}
