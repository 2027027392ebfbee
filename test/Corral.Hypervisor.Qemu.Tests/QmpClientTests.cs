using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Corral.Hypervisor.Qemu.Tests.Infrastructure;

namespace Corral.Hypervisor.Qemu.Tests;

public class QmpMessageTests
{
    [Fact]
    public void The_greeting_is_recognised()
    {
        var m = QmpMessage.Parse("""{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}""");
        Assert.Equal(QmpMessageKind.Greeting, m.Kind);
    }

    [Fact]
    public void Returns_carry_their_id_and_value()
    {
        var m = QmpMessage.Parse("""{"return": {"status": "running", "singlestep": false, "running": true}, "id": "corral-7"}""");
        Assert.Equal(QmpMessageKind.Return, m.Kind);
        Assert.Equal("corral-7", m.Id);
        Assert.Equal("running", m.Return!["status"]!.GetValue<string>());
        Assert.Equal(QmpMessageKind.Return, QmpMessage.Parse("""{"return": {}}""").Kind);
    }

    [Fact]
    public void Errors_carry_class_and_description()
    {
        var m = QmpMessage.Parse("""{"id": "corral-3", "error": {"class": "DeviceNotFound", "desc": "Device 'drive9' not found"}}""");
        Assert.Equal(QmpMessageKind.Error, m.Kind);
        Assert.Equal("corral-3", m.Id);
        Assert.Equal("DeviceNotFound", m.ErrorClass);
        Assert.Equal("Device 'drive9' not found", m.ErrorDescription);
    }

    [Fact]
    public void Events_carry_name_data_and_qemus_timestamp()
    {
        var m = QmpMessage.Parse("""{"timestamp": {"seconds": 1795569655, "microseconds": 680916}, "event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}}""");
        Assert.Equal(QmpMessageKind.Event, m.Kind);
        Assert.Equal("SHUTDOWN", m.Event!.Name);
        Assert.True(m.Event.Data!["guest"]!.GetValue<bool>());
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1795569655).AddTicks(6809160), m.Event.Timestamp);
    }

    [Fact]
    public void Non_objects_are_rejected()
    {
        Assert.ThrowsAny<JsonException>(() => QmpMessage.Parse("[1,2]"));
        Assert.ThrowsAny<JsonException>(() => QmpMessage.Parse("{not json"));
    }
}

/// <summary>
/// The client's protocol handling against a scripted peer on a real Unix socket: replies out of order, events between
/// replies, and the connection dropping with commands outstanding.
/// </summary>
public sealed class QmpClientProtocolTests : IDisposable
{
    private readonly string _dir = Path.Combine("/tmp", "cq-" + Guid.NewGuid().ToString("N")[..8]);

    public QmpClientProtocolTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static async Task WriteAsync(Socket peer, string line) => await peer.SendAsync(Encoding.UTF8.GetBytes(line + "\n"));

    [Fact]
    public async Task Concurrent_commands_get_their_own_replies_and_events_reach_subscribers()
    {
        var path = Path.Combine(_dir, "qmp.sock");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(1);

        var server = Task.Run(async () =>
        {
            using var peer = await listener.AcceptAsync();
            using var reader = new StreamReader(new NetworkStream(peer));
            await WriteAsync(peer, """{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, "capabilities": []}}""");
            var negotiate = JsonNode.Parse((await reader.ReadLineAsync())!)!;
            Assert.Equal("qmp_capabilities", negotiate["execute"]!.GetValue<string>());
            await WriteAsync(peer, $$"""{"return": {}, "id": "{{negotiate["id"]}}"}""");

            var first = JsonNode.Parse((await reader.ReadLineAsync())!)!;
            var second = JsonNode.Parse((await reader.ReadLineAsync())!)!;
            // Answer in reverse order, with an event in between.
            await WriteAsync(peer, $$"""{"return": {"who": "{{second["execute"]}}"}, "id": "{{second["id"]}}"}""");
            await WriteAsync(peer, """{"timestamp": {"seconds": 1, "microseconds": 0}, "event": "STOP"}""");
            await WriteAsync(peer, $$"""{"error": {"class": "CommandNotFound", "desc": "The command {{first["execute"]}} has not been found"}, "id": "{{first["id"]}}"}""");
            // One more command arrives and the peer goes away without answering it.
            await reader.ReadLineAsync();
            peer.Shutdown(SocketShutdown.Both);
        });

        await using var client = await QmpClient.ConnectAsync(path, CancellationToken.None);
        Assert.Equal("7.2.0", client.QemuVersion);
        var events = new List<string>();
        client.EventReceived += (_, e) => events.Add(e.Name);

        var a = client.ExecuteAsync("no-such-command", null, CancellationToken.None);
        var b = client.ExecuteAsync("query-status", null, CancellationToken.None);
        Assert.Equal("query-status", (await b)!["who"]!.GetValue<string>());
        var error = await Assert.ThrowsAsync<QmpException>(() => a);
        Assert.Equal("CommandNotFound", error.ErrorClass);
        Assert.Contains("no-such-command", error.Description, StringComparison.Ordinal);
        Assert.Equal(["STOP"], events);

        var orphan = client.ExecuteAsync("cont", null, CancellationToken.None);
        await Assert.ThrowsAsync<QmpDisconnectedException>(() => orphan);
        await client.Closed.WaitAsync(TimeSpan.FromSeconds(5));
        await Assert.ThrowsAsync<QmpDisconnectedException>(() => client.ExecuteAsync("query-status", null, CancellationToken.None));
        await server;
    }

    [Fact]
    public async Task A_peer_that_never_greets_is_given_up_on()
    {
        var path = Path.Combine(_dir, "mute.sock");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(1);
        var error = await Assert.ThrowsAsync<QmpDisconnectedException>(() => QmpClient.ConnectAsync(path, CancellationToken.None, TimeSpan.FromMilliseconds(300)));
        Assert.Contains("greeting", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cancelling_a_wait_abandons_only_that_command()
    {
        var path = Path.Combine(_dir, "slow.sock");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(1);
        var server = Task.Run(async () =>
        {
            using var peer = await listener.AcceptAsync();
            using var reader = new StreamReader(new NetworkStream(peer));
            await WriteAsync(peer, """{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}}, "capabilities": []}}""");
            var negotiate = JsonNode.Parse((await reader.ReadLineAsync())!)!;
            await WriteAsync(peer, $$"""{"return": {}, "id": "{{negotiate["id"]}}"}""");
            await reader.ReadLineAsync(); // never answered
            var second = JsonNode.Parse((await reader.ReadLineAsync())!)!;
            await WriteAsync(peer, $$"""{"return": 42, "id": "{{second["id"]}}"}""");
            await reader.ReadLineAsync(); // until the client closes
        });

        await using (var client = await QmpClient.ConnectAsync(path, CancellationToken.None))
        {
            using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.ExecuteAsync("slow", null, cancel.Token));
            Assert.Equal(42, (await client.ExecuteAsync("fast", null, CancellationToken.None))!.GetValue<int>());
        }

        await server.WaitAsync(TimeSpan.FromSeconds(5));
    }
}

/// <summary>The client against a real QEMU (no guest needed: <c>-machine none</c> is enough for the monitor).</summary>
public sealed class QmpClientQemuTests
{
    [QemuFact]
    public async Task Talks_to_a_real_qemu_and_sees_it_go()
    {
        var dir = Path.Combine("/tmp", "cq-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        var socket = Path.Combine(dir, "qmp.sock");
        var info = new ProcessStartInfo("qemu-system-x86_64") { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in new[] { "-machine", "none", "-display", "none", "-nodefaults", "-S", "-qmp", $"unix:{socket},server=on,wait=off" })
        {
            info.ArgumentList.Add(a);
        }

        using var qemu = Process.Start(info)!;
        try
        {
            await QemuRig.WaitUntilAsync(() => File.Exists(socket), TimeSpan.FromSeconds(20), "QMP socket");
            await using var client = await QmpClient.ConnectAsync(socket, CancellationToken.None);
            Assert.StartsWith("7.", client.QemuVersion, StringComparison.Ordinal);

            var status = await client.ExecuteAsync("query-status", null, CancellationToken.None);
            Assert.Equal("prelaunch", status!["status"]!.GetValue<string>());

            var missing = await Assert.ThrowsAsync<QmpException>(() => client.ExecuteAsync("no-such-command", null, CancellationToken.None));
            Assert.Equal("CommandNotFound", missing.ErrorClass);

            var bad = await Assert.ThrowsAsync<QmpException>(() => client.ExecuteAsync("eject", new JsonObject { ["device"] = "nothing" }, CancellationToken.None));
            Assert.Equal("DeviceNotFound", bad.ErrorClass);

            var many = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => client.ExecuteAsync("query-name", null, CancellationToken.None)));
            Assert.All(many, r => Assert.NotNull(r));

            var shutdown = new TaskCompletionSource<QmpEventArgs>();
            client.EventReceived += (_, e) =>
            {
                if (e.Name == "SHUTDOWN")
                {
                    shutdown.TrySetResult(e);
                }
            };
            await client.ExecuteAsync("quit", null, CancellationToken.None);
            var e = await shutdown.Task.WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Equal("host-qmp-quit", e.Data!["reason"]!.GetValue<string>());
            await client.Closed.WaitAsync(TimeSpan.FromSeconds(10));
            await qemu.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        }
        finally
        {
            if (!qemu.HasExited)
            {
                qemu.Kill(); // our own child, by its handle
            }

            Directory.Delete(dir, recursive: true);
        }
    }
}
