using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;

namespace Corral.EndToEndTests.Screens;

/// <summary>What a viewer saw, and QEMU's own picture of the same screen taken between two of the viewer's frames.</summary>
/// <param name="Difference">The share of pixels by which the closer of the two frames differs from QEMU's picture.</param>
public sealed record ScreenMatch(ScreenImage Viewer, ScreenImage Qemu, double Difference);

/// <summary>
/// Proves that a viewer shows a VM's real screen: QEMU's own picture of it (<c>screendump</c> over a QMP monitor of the
/// VM, the spare <c>monitor.sock</c> Corral leaves alone) is compared with the viewer's frames just before and just after
/// it. The screen may change between them (a line of text, the blinking cursor): it must match one of the two within
/// <see cref="Tolerance"/>, and carry something drawn (not a blank screen).
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

    /// <summary>
    /// Tries until <paramref name="timeout"/> for a viewer frame that matches QEMU's picture while
    /// <paramref name="stillShowing"/> holds (checked before the first frame and after the last, e.g. "the serial log
    /// says the installer runs and has not finished"); throws with what it saw otherwise.
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
                var before = await viewer.ReadScreenAsync(cancellationToken);
                var qemu = await ScreendumpAsync(monitorSocket, cancellationToken);
                var after = await viewer.ReadScreenAsync(cancellationToken);
                var (closer, difference) = qemu.DifferenceFrom(before) <= qemu.DifferenceFrom(after) ? (before, qemu.DifferenceFrom(before)) : (after, qemu.DifferenceFrom(after));
                if (difference <= Tolerance && qemu.Drawn() >= MinimumDrawn && await stillShowing())
                {
                    return new ScreenMatch(closer, qemu, difference);
                }

                last = $"viewer {closer}, QEMU {qemu}, {difference:P2} of pixels differ";
            }

            await Task.Delay(200, cancellationToken);
        }

        throw new TimeoutException($"the viewer did not show QEMU's screen within {timeout.TotalSeconds} s; last: {last}");
    }

    /// <summary>QEMU's own picture of the VM's screen: <c>screendump</c> to a PPM file, read and removed.</summary>
    public static async Task<ScreenImage> ScreendumpAsync(string monitorSocket, CancellationToken cancellationToken)
    {
        var file = Path.Combine(Path.GetTempPath(), $"corral-screendump-{Guid.NewGuid():N}.ppm");
        try
        {
            using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(monitorSocket), cancellationToken);
            await using var stream = new NetworkStream(socket, ownsSocket: false);
            using var reader = new StreamReader(stream, Encoding.UTF8);
            await using var writer = new StreamWriter(stream, new UTF8Encoding(false)) { AutoFlush = true, NewLine = "\n" };
            await reader.ReadLineAsync(cancellationToken); // the greeting
            await AskAsync(reader, writer, new JsonObject { ["execute"] = "qmp_capabilities" }, cancellationToken);
            await AskAsync(reader, writer, new JsonObject { ["execute"] = "screendump", ["arguments"] = new JsonObject { ["filename"] = file } },
                cancellationToken);
            return ScreenImage.FromPpm(await File.ReadAllBytesAsync(file, cancellationToken));
        }
        finally
        {
            File.Delete(file);
        }
    }

    private static async Task AskAsync(StreamReader reader, StreamWriter writer, JsonObject command, CancellationToken cancellationToken)
    {
        await writer.WriteLineAsync(command.ToJsonString().AsMemory(), cancellationToken);
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            var answer = JsonNode.Parse(line);
            if (answer?["event"] is not null)
            {
                continue;
            }

            if (answer?["error"] is { } error)
            {
                throw new InvalidOperationException($"QMP {command["execute"]}: {error.ToJsonString()}");
            }

            return;
        }

        throw new IOException("the QMP monitor closed");
    }
}
