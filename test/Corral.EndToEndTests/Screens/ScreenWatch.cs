using System.Diagnostics;

namespace Corral.EndToEndTests.Screens;

/// <summary>What a viewer saw, and QEMU's own picture of the same screen taken between two of the viewer's frames.</summary>
/// <param name="Difference">The share of pixels by which the closer of the two frames differs from QEMU's picture.</param>
public sealed record ScreenMatch(ScreenImage Viewer, ScreenImage Qemu, double Difference);

/// <summary>
/// Proves that a viewer shows a VM's real screen: QEMU's own picture of it (<c>screendump</c> over a QMP monitor of the
/// VM, the spare <c>monitor.sock</c> Corral leaves alone) is compared with the viewer's frames just before and just after
/// it. The VM is paused (QMP <c>stop</c>, then <c>cont</c>) while they are compared, so that a screen the guest is
/// writing fast (an installer's progress) holds still long enough for a viewer on a loaded machine to catch up; the
/// cursor may still blink. The closer frame must match within <see cref="Tolerance"/> and carry something drawn (not a
/// blank screen).
/// </summary>
public static class ScreenWatch
{
    /// <summary>
    /// The share of pixels that may differ between a viewer's frame and QEMU's picture taken right after: the text
    /// cursor's blink (a cell's two lines, 0.01 % of a text screen), not one more line of text (about 0.4 %).
    /// </summary>
    public const double Tolerance = 0.002;

    /// <summary>At least this share of the screen must differ from its background: text, not a blank screen.</summary>
    public const double MinimumDrawn = 0.001;

    /// <summary>How long one pause of the VM lasts at most: the viewer's server refreshes its copy of the screen within it.</summary>
    private static readonly TimeSpan PauseLimit = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Tries until <paramref name="timeout"/> for a viewer frame that matches QEMU's picture while
    /// <paramref name="stillShowing"/> holds (checked once the VM is paused, e.g. "the serial log says the installer
    /// runs and has not finished"); throws with what it saw otherwise.
    /// </summary>
    public static async Task<ScreenMatch> MatchAsync(RfbClient viewer, string monitorSocket, Func<Task<bool>> stillShowing, TimeSpan timeout,
        CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var last = "no frame compared";
        while (clock.Elapsed < timeout)
        {
            if (await stillShowing())
            {
                await using var monitor = await QmpMonitor.ConnectAsync(monitorSocket, cancellationToken);
                await monitor.AskAsync("stop", null, cancellationToken);
                try
                {
                    var paused = Stopwatch.StartNew();
                    while (paused.Elapsed < PauseLimit && await stillShowing())
                    {
                        var (match, seen) = await CompareAsync(viewer, monitor, cancellationToken);
                        if (match is not null)
                        {
                            return match;
                        }

                        last = seen;
                        await Task.Delay(200, cancellationToken);
                    }
                }
                finally
                {
                    await monitor.AskAsync("cont", null, CancellationToken.None);
                }
            }

            await Task.Delay(200, cancellationToken);
        }

        throw new TimeoutException($"the viewer did not show QEMU's screen within {timeout.TotalSeconds} s; last: {last}");
    }

    private static async Task<(ScreenMatch? Match, string Seen)> CompareAsync(RfbClient viewer, QmpMonitor monitor, CancellationToken cancellationToken)
    {
        var before = await viewer.ReadScreenAsync(cancellationToken);
        var qemu = await monitor.ScreendumpAsync(cancellationToken);
        var after = await viewer.ReadScreenAsync(cancellationToken);
        var (closer, difference) = qemu.DifferenceFrom(before) <= qemu.DifferenceFrom(after) ? (before, qemu.DifferenceFrom(before)) : (after, qemu.DifferenceFrom(after));
        var seen = $"viewer {closer}, QEMU {qemu}, {difference:P2} of pixels differ";
        return (difference <= Tolerance && qemu.Drawn() >= MinimumDrawn ? new ScreenMatch(closer, qemu, difference) : null, seen);
    }

}
