namespace Corral.UnitTests.Sessions;

/// <summary>A monotonic clock that moves only when a test says so.</summary>
internal sealed class ManualClock : TimeProvider
{
    private long _ticks = 1;

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp() => _ticks;

    public void Advance(TimeSpan by) => _ticks += by.Ticks;
}
