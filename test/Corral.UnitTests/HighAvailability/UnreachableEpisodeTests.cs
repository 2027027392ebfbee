using Corral.Agent.HighAvailability;
using Corral.HighAvailability;
using Microsoft.Extensions.Logging;
using Xunit;

namespace Corral.UnitTests.HighAvailability;

/// <summary>
/// HA's statefile out of reach for minutes is said when the episode begins, when its reason changes and once a minute,
/// and its end with how long it lasted, rather than at every check (every few seconds).
/// </summary>
public sealed class UnreachableEpisodeTests
{
    private sealed class ManualClock : TimeProvider
    {
        private long _ticks = 1;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => _ticks;

        public void Advance(TimeSpan by) => _ticks += by.Ticks;
    }

    private sealed class Lines : ILogger
    {
        public List<(LogLevel Level, EventId Event, string Text)> All { get; } = [];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            All.Add((logLevel, eventId, formatter(state, exception)));
    }

    [Fact]
    public void An_outage_is_said_at_its_start_on_a_new_reason_each_minute_and_at_its_end()
    {
        var clock = new ManualClock();
        var log = new Lines();
        var episode = new UnreachableEpisode(log, clock);
        var silent = new IOException("the statefile volume's storage has not answered for 30 s");
        for (var check = 0; check <= 12; check++)
        {
            episode.Failed("sr1", silent);
            clock.Advance(TimeSpan.FromSeconds(5));
        }

        episode.Failed("sr1", new IOException("qemu-storage-daemon did not export statefile"));
        clock.Advance(TimeSpan.FromSeconds(5));
        episode.Failed("sr1", new IOException("qemu-storage-daemon did not export statefile"));
        episode.Succeeded("sr1");
        episode.Succeeded("sr1");

        var said = log.All.Where(l => l.Level >= LogLevel.Information).ToList();
        Assert.Equal(
            [HaEvents.StatefileUnreachable, HaEvents.StatefileUnreachable, HaEvents.StatefileUnreachable, HaEvents.StatefileReachable],
            said.Select(l => l.Event));
        Assert.Equal("HA's statefile on SR sr1 cannot be reached from this host: the statefile volume's storage has not answered for 30 s", said[0].Text);
        Assert.Equal("HA's statefile on SR sr1 cannot be reached from this host (for 60 s): the statefile volume's storage has not answered for 30 s", said[1].Text);
        Assert.Equal("HA's statefile on SR sr1 cannot be reached from this host (for 65 s): qemu-storage-daemon did not export statefile", said[2].Text);
        Assert.Equal("HA's statefile on SR sr1 is reached from this host again, after 70 s", said[3].Text);
        Assert.Equal(12, log.All.Count(l => l.Level == LogLevel.Debug));
    }
}
