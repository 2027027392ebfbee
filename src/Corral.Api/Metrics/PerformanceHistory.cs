namespace Corral.Api.Metrics;

/// <summary>
/// What every data source of this host measured at one instant. Keys are xapi's legend names without the consolidation
/// function: <c>host:&lt;uuid&gt;:cpu0</c>, <c>vm:&lt;uuid&gt;:memory</c>. NaN is a value not known for that instant.
/// </summary>
/// <param name="Time">Unix seconds, a multiple of the sampling step.</param>
/// <param name="Values">In the order the sampler produced them, which is the order of the legend.</param>
public sealed class PerformanceSample(long time, IReadOnlyList<KeyValuePair<string, double>> values)
{
    private readonly Dictionary<string, double> _byName = values.ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);

    public long Time { get; } = time;

    public IReadOnlyList<KeyValuePair<string, double>> Values { get; } = values;

    public bool TryGet(string name, out double value) => _byName.TryGetValue(name, out value);
}

/// <summary>
/// The host's recent samples in a ring buffer: the newest <see cref="Capacity"/> are kept, older ones are overwritten.
/// Read and written from different threads.
/// </summary>
public sealed class PerformanceHistory
{
    /// <summary>The step xapi samples at, and so does Corral.</summary>
    public const int SampleStepSeconds = 5;

    /// <summary>One hour at one sample every 5 s, and the sample that opens it.</summary>
    public const int DefaultCapacity = 3600 / SampleStepSeconds + 1;

    private readonly PerformanceSample?[] _ring;
    private readonly Lock _lock = new();
    private int _next;
    private int _count;

    public PerformanceHistory(int capacity = DefaultCapacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _ring = new PerformanceSample?[capacity];
    }

    public int Capacity => _ring.Length;

    /// <summary>
    /// Adds the newest sample. One at the same time as the newest replaces it (a clock that stepped back is not
    /// history); one older than the newest is refused, so the buffer stays in time order.
    /// </summary>
    /// <returns>Whether the sample was kept.</returns>
    public bool Add(PerformanceSample sample)
    {
        lock (_lock)
        {
            if (_count > 0)
            {
                var newestIndex = (_next - 1 + _ring.Length) % _ring.Length;
                var newest = _ring[newestIndex]!;
                if (sample.Time < newest.Time)
                {
                    return false;
                }

                if (sample.Time == newest.Time)
                {
                    _ring[newestIndex] = sample;
                    return true;
                }
            }

            _ring[_next] = sample;
            _next = (_next + 1) % _ring.Length;
            _count = Math.Min(_count + 1, _ring.Length);
            return true;
        }
    }

    /// <summary>The samples held, oldest first.</summary>
    public IReadOnlyList<PerformanceSample> Snapshot()
    {
        lock (_lock)
        {
            var result = new PerformanceSample[_count];
            var oldest = (_next - _count + _ring.Length) % _ring.Length;
            for (var i = 0; i < _count; i++)
            {
                result[i] = _ring[(oldest + i) % _ring.Length]!;
            }

            return result;
        }
    }
}
