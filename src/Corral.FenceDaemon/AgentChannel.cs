using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Corral.HighAvailability;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Corral.FenceDaemon;

/// <summary>
/// The agent's way in: a Unix socket (root only) on which the agent sends a <see cref="FenceReportMessage"/> per line
/// and reads a <see cref="FenceStatusMessage"/> back. Any number of agents may connect in turn (a restarted agent is a
/// new connection); what the last one said stands after it goes.
/// </summary>
public sealed class AgentChannel(FenceState state, IOptions<FenceOptions> options, ILogger<AgentChannel> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var path = options.Value.Socket;
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.Delete(path);
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        listener.Listen(4);
        logger.LogInformation("Listening for the agent on {Socket}", path);
        while (!stoppingToken.IsCancellationRequested)
        {
            Socket connection;
            try
            {
                connection = await listener.AcceptAsync(stoppingToken);
            }
            catch (OperationCanceledException)
            {
                break;
            }

            _ = ServeAsync(connection, stoppingToken);
        }
    }

    private int _reported;

    private async Task ServeAsync(Socket connection, CancellationToken stoppingToken)
    {
        using var _ = connection;
        await using var stream = new NetworkStream(connection, ownsSocket: false);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        await using var writer = new StreamWriter(stream, new UTF8Encoding(false)) { AutoFlush = true, NewLine = "\n" };
        try
        {
            while (await reader.ReadLineAsync(stoppingToken) is { } line)
            {
                if (JsonSerializer.Deserialize<FenceReportMessage>(line) is not { } report)
                {
                    continue;
                }

                await writer.WriteLineAsync(JsonSerializer.Serialize(state.Report(report)));
                if (Interlocked.Exchange(ref _reported, 1) == 0)
                {
                    // What an upgrade waits for between restarting this daemon and restarting the agent: from here on
                    // this daemon knows where the heartbeat goes, and keeps writing it while the agent restarts.
                    logger.LogInformation(HaEvents.AgentFirstReport, "The agent reports: the fence and the heartbeat are in place");
                }
            }
        }
        catch (Exception ex) when (ex is IOException or JsonException or OperationCanceledException)
        {
            logger.LogDebug(ex, "The agent's connection ended");
        }
    }
}
