using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Corral.Agent.Hosting;
using Corral.HighAvailability;
using Microsoft.Extensions.Options;

namespace Corral.Agent.HighAvailability;

/// <summary>
/// The agent's side of the fence daemon (<see cref="HaOptions.FenceSocket"/>): every
/// <see cref="HaTimings.SelfFenceCheck"/> it tells the daemon whether HA is on, where the heartbeat goes, until when
/// (on the host's monotonic clock) the liveness lease may be counted on, and the timing budget; and it hands what the
/// daemon says of its heartbeat to <see cref="StorageHeartbeat"/>, for this agent's own self-fence. Taken
/// conservatively: a write counts as begun no later than the daemon said, measured from when this agent asked.
/// </summary>
public sealed class FenceDaemonLink(
    StorageHeartbeat heartbeat,
    HostLiveness liveness,
    HostIdentity identity,
    TimeProvider clock,
    IOptions<HaOptions> options,
    ILogger<FenceDaemonLink> logger) : BackgroundService
{
    private bool _unreachableLogged;
    private string? _toldDaemon;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (options.Value.FenceSocket is not { } path)
        {
            logger.LogWarning("No fence daemon (Corral:Ha:FenceSocket unset): this agent writes the HA heartbeat itself, and a crash of the agent stops it; "
                + "with HA on, every host then needs a fence agent (docs/ha.md)");
            return;
        }

        var timings = options.Value.Timings;
        using var timer = new PeriodicTimer(timings.SelfFenceCheck, clock);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await ReportAsync(path, timer, timings, stoppingToken);
            }
            catch (Exception ex) when (ex is IOException or SocketException or JsonException or OperationCanceledException && !stoppingToken.IsCancellationRequested)
            {
                if (!_unreachableLogged)
                {
                    _unreachableLogged = true;
                    logger.LogError(ex, "The fence daemon at {Socket} does not answer: this agent self-fences on its own (its heartbeat counts as not landing)", path);
                }

                await Task.Delay(timings.SelfFenceCheck * 5, clock, stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    private async Task ReportAsync(string path, PeriodicTimer timer, HaTimings timings, CancellationToken stoppingToken)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), stoppingToken);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        await using var writer = new StreamWriter(stream, new UTF8Encoding(false)) { AutoFlush = true, NewLine = "\n" };
        if (_unreachableLogged)
        {
            _unreachableLogged = false;
            logger.LogInformation("The fence daemon at {Socket} answers again", path);
        }

        var timingsMessage = FenceTimingsMessage.From(timings);
        do
        {
            // A starting agent has nothing to say until it has read HA's configuration: the daemon keeps its last word.
            if (!heartbeat.ConfigurationRead)
            {
                continue;
            }

            var asked = clock.GetTimestamp();
            var report = Report(timingsMessage);
            NoteReport(report);
            await writer.WriteLineAsync(JsonSerializer.Serialize(report));
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
            timeout.CancelAfter(timings.OwnHeartbeatWindow);
            var line = await reader.ReadLineAsync(timeout.Token) ?? throw new IOException("the fence daemon closed the connection");
            if (JsonSerializer.Deserialize<FenceStatusMessage>(line) is { SinceBeatBeganNanoseconds: { } sinceNs })
            {
                heartbeat.DaemonBeatBegan(asked - (long)((Int128)sinceNs * clock.TimestampFrequency / 1_000_000_000));
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    /// <summary>What this agent tells the daemon of HA, logged when it changes (the daemon arms its watchdog on it).</summary>
    private void NoteReport(FenceReportMessage report)
    {
        var told = !report.HaEnabled ? "HA off"
            : report.StatefileDirectory is null && report.StatefileVolume is null ? "HA on, no statefile here" : "HA on, with the statefile";
        if (told != _toldDaemon)
        {
            _toldDaemon = told;
            logger.LogInformation(HaEvents.FenceDaemonTold, "Telling the fence daemon: {Told}", told);
        }
    }

    private FenceReportMessage Report(FenceTimingsMessage timings)
    {
        // The lease's safe time is on the host's monotonic clock already, which the daemon shares: no wall clock crosses
        // the socket.
        var lease = liveness.Lease;
        var safeUntil = liveness.LeaseSafe() && lease is not null ? lease.SafeUntil : TimeSpan.Zero;
        return new FenceReportMessage(heartbeat.HaEnabled, identity.Uuid, heartbeat.StatefileDirectory, safeUntil.Ticks * 100, timings, lease?.Id,
            heartbeat.StatefileVolume);
    }
}
