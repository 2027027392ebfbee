using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Corral.EndToEndTests;

/// <summary>
/// What QEMU says of a guest, read through the VM's spare monitor (<c>monitor.sock</c>, which the agent leaves alone)
/// and written beside the agents' logs when a lab ends: a guest that stopped answering is then explained by its run
/// state, its CPU's registers and its devices' queues rather than guessed at.
/// </summary>
internal static class GuestSnapshot
{
    private static readonly string[] HumanCommands = ["info status", "info registers", "info network", "info virtio", "info lapic", "info irq"];

    public static async Task WriteAsync(string monitorSocket, string file)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var text = new StringBuilder();
        try
        {
            using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(monitorSocket), timeout.Token);
            await using var stream = new NetworkStream(socket, ownsSocket: false);
            using var reader = new StreamReader(stream, Encoding.UTF8);
            await using var writer = new StreamWriter(stream, new UTF8Encoding(false)) { AutoFlush = true, NewLine = "\n" };
            await reader.ReadLineAsync(timeout.Token); // the greeting
            await AskAsync(reader, writer, new JsonObject { ["execute"] = "qmp_capabilities" }, timeout.Token);
            text.AppendLine("query-status: " + await AskAsync(reader, writer, new JsonObject { ["execute"] = "query-status" }, timeout.Token));
            text.AppendLine("query-migrate: " + await AskAsync(reader, writer, new JsonObject { ["execute"] = "query-migrate" }, timeout.Token));
            foreach (var command in HumanCommands)
            {
                var ask = new JsonObject { ["execute"] = "human-monitor-command", ["arguments"] = new JsonObject { ["command-line"] = command } };
                var answer = await AskAsync(reader, writer, ask, timeout.Token);
                text.AppendLine($"== {command}").AppendLine(answer?["return"]?.GetValue<string>() ?? answer?.ToJsonString());
            }
        }
        catch (Exception ex) when (ex is SocketException or IOException or JsonException or OperationCanceledException or InvalidOperationException)
        {
            text.AppendLine("monitor: " + ex.Message);
        }

        await File.WriteAllTextAsync(file, text.ToString());
    }

    private static async Task<JsonNode?> AskAsync(StreamReader reader, StreamWriter writer, JsonObject command, CancellationToken cancellationToken)
    {
        await writer.WriteLineAsync(command.ToJsonString().AsMemory(), cancellationToken);
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            var answer = JsonNode.Parse(line);
            if (answer?["event"] is null)
            {
                return answer;
            }
        }

        throw new IOException("the monitor closed");
    }
}
