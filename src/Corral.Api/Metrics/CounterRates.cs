namespace Corral.Api.Metrics;

/// <summary>
/// Turns ever-growing counters (bytes read, CPU ticks) into rates per second between two sampling rounds, as xapi's
/// DERIVE data sources do. A counter seen for the first time, or that went backwards (the device or process was
/// replaced, e.g. a tap made anew after a migration), has no rate for that round: NaN, as xapi records an unknown.
/// </summary>
public sealed class CounterRates
{
    private Dictionary<string, (long Counter, double Seconds)> _previous = new(StringComparer.Ordinal);
    private Dictionary<string, (long Counter, double Seconds)> _current = new(StringComparer.Ordinal);

    public static double PerSecond(long before, long after, double elapsedSeconds) =>
        elapsedSeconds <= 0 || after < before ? double.NaN : (after - before) / elapsedSeconds;

    /// <summary>Records <paramref name="counter"/> at <paramref name="atSeconds"/> (a monotonic clock) and gives its rate since the last round.</summary>
    public double Observe(string key, long counter, double atSeconds)
    {
        _current[key] = (counter, atSeconds);
        return _previous.TryGetValue(key, out var last) ? PerSecond(last.Counter, counter, atSeconds - last.Seconds) : double.NaN;
    }

    /// <summary>Ends a round: counters not observed in it are forgotten (their VM or device is gone).</summary>
    public void EndRound()
    {
        (_previous, _current) = (_current, _previous);
        _current.Clear();
    }
}
