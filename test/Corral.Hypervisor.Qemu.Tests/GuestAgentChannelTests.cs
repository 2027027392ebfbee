using System.Net.Sockets;
using System.Text;
using Corral.Hypervisor.Qemu.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Corral.Hypervisor.Qemu.Tests;

public sealed class GuestAgentChannelTests(ITestOutputHelper output) : IDisposable
{
    private const string Report =
        """{"agent":"corral-guest-agent","version":"1.0.0","uptime":123.45,"os":{"name":"Corral Linux test","uname":"6.1.0"},"networks":{"0/ip":"10.77.0.10","0/ipv4/0":"10.77.0.10"},"pv_drivers":{"virtio_net":"1","virtio_blk":"1"}}""";

    private readonly string _dir = Path.Combine("/tmp", "cq-" + Guid.NewGuid().ToString("N")[..8]);

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    [Fact]
    public void Reports_parse_into_version_uptime_os_networks_and_drivers()
    {
        var received = new DateTime(2026, 11, 25, 1, 0, 0, DateTimeKind.Utc);
        var report = GuestAgentChannel.TryParseReport(Report, received)!;
        Assert.Equal("1.0.0", report.AgentVersion);
        Assert.Equal(TimeSpan.FromSeconds(123.45), report.Uptime);
        Assert.Equal("Corral Linux test", report.OsVersion["name"]);
        Assert.Equal("10.77.0.10", report.Networks["0/ip"]);
        Assert.Equal("10.77.0.10", report.Networks["0/ipv4/0"]);
        Assert.Equal("1", report.PvDrivers["virtio_blk"]);
        Assert.Equal(received, report.ReceivedUtc);
    }

    [Theory]
    [InlineData("""{"ack":"shutdown"}""")]
    [InlineData("garbage")]
    [InlineData("[]")]
    [InlineData("")]
    public void Anything_but_a_report_is_not_a_report(string line) => Assert.Null(GuestAgentChannel.TryParseReport(line, DateTime.UtcNow));

    [Fact]
    public void Missing_parts_of_a_report_read_as_empty()
    {
        var report = GuestAgentChannel.TryParseReport("""{"agent":"x","uptime":"soon"}""", DateTime.UtcNow)!;
        Assert.Equal("0", report.AgentVersion);
        Assert.Equal(TimeSpan.Zero, report.Uptime);
        Assert.Empty(report.Networks);
        Assert.Empty(report.PvDrivers);
    }

    [Fact]
    public void Acks_name_their_command()
    {
        Assert.Equal("shutdown", GuestAgentChannel.TryParseAck("""{"ack":"shutdown"}"""));
        Assert.Null(GuestAgentChannel.TryParseAck(Report));
        Assert.Null(GuestAgentChannel.TryParseAck("nonsense"));
    }

    /// <summary>The socket QEMU would serve for the guest agent's port, in the test's directory.</summary>
    private Socket Listen(out string path)
    {
        Directory.CreateDirectory(_dir);
        path = Path.Combine(_dir, "guest-agent.sock");
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(1);
        return listener;
    }

    /// <summary>The channel over a real Unix socket whose far end plays the guest: reports, a command and its ack, a reconnect.</summary>
    [Fact]
    public async Task Reports_arrive_commands_are_acknowledged_and_a_dropped_socket_is_reconnected()
    {
        using var listener = Listen(out var path);

        await using var channel = new GuestAgentChannel(path, "test-vm", new TestLogger<GuestAgentChannel>(output));
        var reports = 0;
        channel.ReportReceived += (_, _) => Interlocked.Increment(ref reports);

        using (var guest = await listener.AcceptAsync().WaitAsync(TimeSpan.FromSeconds(10)))
        {
            await guest.SendAsync(Encoding.UTF8.GetBytes(Report + "\n"));
            await QemuRig.WaitUntilAsync(() => channel.LatestReport is not null, TimeSpan.FromSeconds(10), "first report");
            Assert.True(channel.IsResponsive(TimeSpan.FromSeconds(10)));

            var answer = Task.Run(async () =>
            {
                using var reader = new StreamReader(new NetworkStream(guest, ownsSocket: false));
                var command = await reader.ReadLineAsync();
                await guest.SendAsync(Encoding.UTF8.GetBytes($$"""{"ack":"{{command}}"}""" + "\n"));
                return command;
            });
            Assert.True(await channel.SendCommandAsync("reboot", TimeSpan.FromSeconds(5), CancellationToken.None));
            Assert.Equal("reboot", await answer);

            // A guest that takes a command but never answers is reported as not having taken it.
            Assert.False(await channel.SendCommandAsync("shutdown", TimeSpan.FromMilliseconds(300), CancellationToken.None));
        }

        using var again = await listener.AcceptAsync().WaitAsync(TimeSpan.FromSeconds(10));
        await again.SendAsync(Encoding.UTF8.GetBytes(Report.Replace("123.45", "200", StringComparison.Ordinal) + "\n"));
        // The report is the latest before its handlers run: wait for the handler's count, then check which report it was.
        await QemuRig.WaitUntilAsync(() => Volatile.Read(ref reports) >= 2, TimeSpan.FromSeconds(10), "report after reconnect");
        Assert.Equal(TimeSpan.FromSeconds(200), channel.LatestReport?.Uptime);
        Assert.Equal(2, Volatile.Read(ref reports));
    }

    /// <summary>
    /// A guest that floods its channel: an endless line costs a fixed buffer and is skipped whole, lines past the rate are
    /// dropped unread, and at most one report per interval is passed on (each is a pool database write).
    /// </summary>
    [Fact]
    public async Task A_flooding_guest_is_held_to_its_line_length_line_rate_and_report_rate()
    {
        using var listener = Listen(out var path);

        var limits = new GuestAgentChannel.ChannelLimits(MaxLineBytes: 4096, MinReportInterval: TimeSpan.FromSeconds(30), LinesPerSecond: 5);
        // Time stands still: no line is earned back while the test runs, so the counts are exact.
        await using var channel = new GuestAgentChannel(path, "test-vm", new TestLogger<GuestAgentChannel>(output), limits, new FrozenTime());
        var reports = 0;
        channel.ReportReceived += (_, _) => Interlocked.Increment(ref reports);
        using var guest = await listener.AcceptAsync().WaitAsync(TimeSpan.FromSeconds(10));

        // 1 MiB without a newline, sent in pieces, then its end: skipped whole; the report after it is read.
        var chunk = Encoding.UTF8.GetBytes(new string('x', 64 * 1024));
        for (var i = 0; i < 16; i++)
        {
            await guest.SendAsync(chunk);
        }

        await guest.SendAsync(Encoding.UTF8.GetBytes("\n" + Report + "\n"));
        await QemuRig.WaitUntilAsync(() => channel.LatestReport is not null, TimeSpan.FromSeconds(10), "the report after the long line");
        Assert.Equal(1, channel.DroppedLines);
        Assert.Equal(1, reports);

        // 200 reports at once: the 19 lines left of the burst allowance (4 s at 5 a second, one used) are read, the rest
        // dropped unread; none is passed on within the 30 s interval, and the latest kept is the last one read.
        var burst = string.Concat(Enumerable.Range(1, 200).Select(i => Report.Replace("123.45", i.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal) + "\n"));
        await guest.SendAsync(Encoding.UTF8.GetBytes(burst));
        await QemuRig.WaitUntilAsync(() => channel.DroppedLines == 1 + 181, TimeSpan.FromSeconds(10), "the burst's excess dropped");
        Assert.Equal(19, channel.LatestReport!.Uptime.TotalSeconds);
        Assert.Equal(1, reports);
    }

    private sealed class FrozenTime : TimeProvider
    {
        public override long GetTimestamp() => 1;
    }
}
