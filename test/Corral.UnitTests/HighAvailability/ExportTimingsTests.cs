using Corral.Statefile;
using Xunit;

namespace Corral.UnitTests.HighAvailability;

public sealed class ExportTimingsTests
{
    [Fact]
    public void The_default_timings_hold_their_invariants() => Assert.Same(ExportTimings.Default, ExportTimings.Default.Validated());

    [Theory]
    [InlineData(0, 30, 15)] // no read deadline
    [InlineData(5, 5, 15)] // suspected as soon as a read counts as hung: a slow read would restart a working daemon
    [InlineData(5, 30, 0)] // no time for the fresh read
    public void Timings_that_break_them_are_refused(int read, int patience, int fresh) =>
        Assert.Throws<ArgumentException>(() => new ExportTimings(TimeSpan.FromSeconds(read), TimeSpan.FromSeconds(patience), TimeSpan.FromSeconds(fresh)).Validated());

    [Fact]
    public void A_process_stopped_by_a_signal_is_told_from_a_running_one()
    {
        using var sleeper = System.Diagnostics.Process.Start("sleep", "30");
        try
        {
            Assert.False(ExportHealth.IsStopped(sleeper.Id));
            using (var stop = System.Diagnostics.Process.Start("kill", ["-STOP", sleeper.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                stop.WaitForExit();
            }

            var clock = System.Diagnostics.Stopwatch.StartNew();
            while (!ExportHealth.IsStopped(sleeper.Id))
            {
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), "the stopped process to show state T");
                Thread.Sleep(20);
            }
        }
        finally
        {
            sleeper.Kill();
        }

        Assert.False(ExportHealth.IsStopped(int.MaxValue)); // no such process
    }
}
