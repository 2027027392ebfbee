using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;

namespace Corral.EndToEndTests;

/// <summary>
/// What the lab shows of a VM that stopped answering ping, for a failure message: where its QEMU runs and what QEMU says
/// of it (run state, the vCPU's registers, the NIC's receive filter), whether its tap passes packets each way, where the
/// bridges send its MAC, the root namespace's neighbour entry and route, and its console's last lines. Enough to tell a
/// hung guest from a network that sends its traffic elsewhere.
/// </summary>
public static class GuestDiagnostics
{
    public static async Task<string> DescribeAsync(LabSession lab, string vm, string ip)
    {
        var text = new StringBuilder();
        try
        {
            var mac = (await lab.TryXe("vif-list", $"vm-uuid={vm}", "device=0", "params=MAC", "--minimal")).Output.Trim();
            text.AppendLine($"VM {vm} at {ip}, MAC {mac}, QEMU on hosts [{string.Join(',', lab.RunningCopies(vm))}]");
            text.AppendLine("root: " + (await lab.RunAsync("ip", "neigh", "show", ip)).Output + " | " + (await lab.RunAsync("ip", "route", "get", ip)).Output);
            foreach (var host in lab.RunningCopies(vm))
            {
                var directory = Path.Combine(lab.RunDirectory, $"host{host}", "vms", vm);
                text.AppendLine($"host{host} QEMU: {await MonitorAsync(Path.Combine(directory, "monitor.sock"))}");
                var before = (await lab.RunAsync("ip", "netns", "exec", lab.Namespace(host), "ip", "-s", "-o", "link", "show", "type", "tun")).Output;
                await Task.Delay(2000);
                var after = (await lab.RunAsync("ip", "netns", "exec", lab.Namespace(host), "ip", "-s", "-o", "link", "show", "type", "tun")).Output;
                text.AppendLine($"host{host} taps (2 s apart):\n  {before.Replace("\n", "\n  ", StringComparison.Ordinal)}\n  {after.Replace("\n", "\n  ", StringComparison.Ordinal)}");
                var console = Path.Combine(directory, "console.log");
                if (File.Exists(console))
                {
                    text.AppendLine($"host{host} console: " + string.Join(" | ", (await File.ReadAllLinesAsync(console)).TakeLast(5)));
                }
            }

            for (var host = 1; host <= 3; host++)
            {
                var fdb = (await lab.RunAsync("ip", "netns", "exec", lab.Namespace(host), "bridge", "fdb", "show")).Output;
                text.AppendLine($"host{host} fdb: " + string.Join(" | ", fdb.Split('\n').Where(l => l.Contains(mac, StringComparison.OrdinalIgnoreCase))));
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or InvalidOperationException or System.Text.Json.JsonException)
        {
            text.AppendLine("(diagnostics stopped: " + ex.Message + ")");
        }

        return text.ToString();
    }

    /// <summary>query-status, the vCPU's instruction pointer and halt state, and the NIC's receive filter, over QMP.</summary>
    private static async Task<string> MonitorAsync(string socketPath)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), timeout.Token);
        await using var stream = new NetworkStream(socket);
        using var reader = new StreamReader(stream);
        await reader.ReadLineAsync(timeout.Token);
        async Task<JsonNode?> Qmp(string command, JsonObject? arguments = null)
        {
            var request = new JsonObject { ["execute"] = command };
            if (arguments is not null)
            {
                request["arguments"] = arguments;
            }

            await stream.WriteAsync(Encoding.UTF8.GetBytes(request.ToJsonString() + "\n"), timeout.Token);
            while (await reader.ReadLineAsync(timeout.Token) is { } line)
            {
                var reply = JsonNode.Parse(line);
                if (reply?["return"] is { } value)
                {
                    return value;
                }

                if (reply?["error"] is { } error)
                {
                    return error;
                }
            }

            return null;
        }

        await Qmp("qmp_capabilities");
        var status = (await Qmp("query-status"))?["status"]?.ToString();
        var registers = (await Qmp("human-monitor-command", new JsonObject { ["command-line"] = "info registers" }))?.ToString() ?? "";
        var rip = registers.Split('\n').FirstOrDefault(l => l.Contains("RIP=", StringComparison.Ordinal))?.Trim();
        var filter = (await Qmp("query-rx-filter"))?.ToJsonString();
        return $"status {status}; {rip}; rx-filter {filter}";
    }
}
