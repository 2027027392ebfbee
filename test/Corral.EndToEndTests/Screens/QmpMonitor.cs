using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;

namespace Corral.EndToEndTests.Screens;

/// <summary>
/// A test's own QMP session on a VM's spare monitor (<c>monitor.sock</c>, which Corral leaves alone): commands answered
/// in order, events skipped.
/// </summary>
public sealed class QmpMonitor : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly StreamReader _reader;
    private readonly StreamWriter _writer;

    private QmpMonitor(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: false);
        _reader = new StreamReader(_stream, Encoding.UTF8);
        _writer = new StreamWriter(_stream, new UTF8Encoding(false)) { AutoFlush = true, NewLine = "\n" };
    }

    /// <summary>Connects, reads the greeting and leaves capability negotiation.</summary>
    public static async Task<QmpMonitor> ConnectAsync(string monitorSocket, CancellationToken cancellationToken)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        QmpMonitor? monitor = null;
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(monitorSocket), cancellationToken);
            monitor = new QmpMonitor(socket);
            await monitor._reader.ReadLineAsync(cancellationToken); // the greeting
            await monitor.AskAsync("qmp_capabilities", null, cancellationToken);
            return monitor;
        }
        catch
        {
            if (monitor is not null)
            {
                await monitor.DisposeAsync();
            }
            else
            {
                socket.Dispose();
            }

            throw;
        }
    }

    /// <summary>Runs one command; its error as an exception.</summary>
    public async Task AskAsync(string command, JsonObject? arguments, CancellationToken cancellationToken)
    {
        var request = new JsonObject { ["execute"] = command };
        if (arguments is not null)
        {
            request["arguments"] = arguments;
        }

        await _writer.WriteLineAsync(request.ToJsonString().AsMemory(), cancellationToken);
        while (await _reader.ReadLineAsync(cancellationToken) is { } line)
        {
            var answer = JsonNode.Parse(line);
            if (answer?["event"] is not null)
            {
                continue;
            }

            if (answer?["error"] is { } error)
            {
                throw new InvalidOperationException($"QMP {command}: {error.ToJsonString()}");
            }

            return;
        }

        throw new IOException("the QMP monitor closed");
    }

    /// <summary>QEMU's own picture of the VM's screen: <c>screendump</c> to a PPM file, read and removed.</summary>
    public async Task<ScreenImage> ScreendumpAsync(CancellationToken cancellationToken)
    {
        var file = Path.Combine(Path.GetTempPath(), $"corral-screendump-{Guid.NewGuid():N}.ppm");
        try
        {
            await AskAsync("screendump", new JsonObject { ["filename"] = file }, cancellationToken);
            return ScreenImage.FromPpm(await File.ReadAllBytesAsync(file, cancellationToken));
        }
        finally
        {
            File.Delete(file);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _writer.DisposeAsync();
        _reader.Dispose();
        await _stream.DisposeAsync();
        _socket.Dispose();
    }
}
