using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Corral.Hypervisor.Qemu.GuestAgent;

/// <summary>An error the QEMU guest agent answered with: its class (GenericError, CommandNotFound...) and description.</summary>
public sealed class QgaException(string errorClass, string description) : Exception($"{errorClass}: {description}")
{
    public string ErrorClass { get; } = errorClass;

    public string Description { get; } = description;
}

/// <summary>
/// One connection to a QEMU guest agent (<c>qemu-ga</c>, Debian's <c>qemu-guest-agent</c>, or the one in the virtio-win
/// drivers) through the host end of its virtio-serial port <c>org.qemu.guest_agent.0</c>, which QEMU exposes as a Unix
/// socket. The protocol is QMP's JSON without ids, one command at a time, so requests are serialised here. A guest
/// agent may have been restarted, or may still be answering a command we gave up on: before the first command, and
/// after any that failed to complete, the stream is resynchronised with <c>guest-sync-delimited</c> (a fresh random id,
/// the 0xFF byte that resets the agent's parser, and the 0xFF the agent puts before its answer). Each answer is one line
/// of at most <see cref="MaxAnswerBytes"/>: what a guest sends costs the host a bounded buffer.
/// </summary>
public sealed class QgaClient : IAsyncDisposable
{
    /// <summary>The virtio-serial port name every QEMU guest agent looks for.</summary>
    public const string PortName = "org.qemu.guest_agent.0";

    public const int MaxAnswerBytes = 1024 * 1024;

    private const byte Delimiter = 0xFF;
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly BoundedLineReader _reader;
    private readonly SemaphoreSlim _one = new(1, 1);
    private bool _synced;

    private QgaClient(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: false);
        _reader = new BoundedLineReader(_stream, MaxAnswerBytes);
    }

    /// <summary>Takes over a connected socket (whatever was sent on it before is resynchronised past).</summary>
    internal static QgaClient Over(Socket socket) => new(socket);

    /// <summary>Connects to the agent's socket; nothing is sent until the first command.</summary>
    public static async Task<QgaClient> ConnectAsync(string socketPath, CancellationToken cancellationToken)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken);
            return new QgaClient(socket);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Runs <paramref name="command"/> and returns its <c>return</c> value. Throws <see cref="QgaException"/> for the
    /// agent's error, <see cref="TimeoutException"/> when no answer came within <paramref name="timeout"/> (no agent
    /// running in the guest, or one too busy), <see cref="IOException"/> when the connection is gone.
    /// </summary>
    public Task<JsonNode?> ExecuteAsync(string command, JsonObject? arguments, TimeSpan timeout, CancellationToken cancellationToken) =>
        ExchangeAsync(command, arguments, expectAnswer: true, timeout, cancellationToken);

    /// <summary>
    /// Sends a command that answers nothing when it succeeds (<c>guest-shutdown</c>, <c>guest-suspend-*</c>): the agent
    /// acts on it, and its effect (the guest powering off) is the only answer. The stream is resynchronised before the
    /// next command, which discards an error the agent may have sent meanwhile.
    /// </summary>
    public Task SendAsync(string command, JsonObject? arguments, TimeSpan timeout, CancellationToken cancellationToken) =>
        ExchangeAsync(command, arguments, expectAnswer: false, timeout, cancellationToken);

    private async Task<JsonNode?> ExchangeAsync(string command, JsonObject? arguments, bool expectAnswer, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(timeout);
        await _one.WaitAsync(limit.Token);
        try
        {
            if (!_synced)
            {
                await SyncAsync(limit.Token);
            }

            // Out of step until the answer is read (or, for a command without one, until the next resynchronisation).
            _synced = false;
            await WriteAsync(command, arguments, delimit: false, limit.Token);
            if (!expectAnswer)
            {
                return null;
            }

            var answer = await ReadAnswerAsync(limit.Token);
            _synced = true;
            return Unwrap(answer);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"the guest agent did not {(expectAnswer ? "answer" : "take")} {command} within {timeout.TotalSeconds:0.#} s");
        }
        finally
        {
            _one.Release();
        }
    }

    private async Task SyncAsync(CancellationToken cancellationToken)
    {
        var id = RandomNumberGenerator.GetInt32(1, int.MaxValue);
        await WriteAsync("guest-sync-delimited", new JsonObject { ["id"] = id }, delimit: true, cancellationToken);
        while (true)
        {
            // Whatever came before the agent's 0xFF is an answer to a command we gave up on, or noise.
            if (!await _reader.SkipPastAsync(Delimiter, cancellationToken))
            {
                throw new IOException("the guest agent's channel closed");
            }

            var answer = await ReadAnswerAsync(cancellationToken);
            if (answer["return"] is JsonValue value && value.TryGetValue<long>(out var echoed) && echoed == id)
            {
                _synced = true;
                return;
            }
        }
    }

    private async Task WriteAsync(string command, JsonObject? arguments, bool delimit, CancellationToken cancellationToken)
    {
        var request = new JsonObject { ["execute"] = command };
        if (arguments is not null)
        {
            request["arguments"] = arguments;
        }

        var text = Encoding.UTF8.GetBytes(request.ToJsonString() + "\n");
        var bytes = delimit ? [Delimiter, .. text] : text;
        await _stream.WriteAsync(bytes, cancellationToken);
    }

    /// <summary>The next JSON object the agent sends; lines that are not one (a partial answer cut by a resync) are skipped.</summary>
    private async Task<JsonObject> ReadAnswerAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var line = await _reader.ReadLineAsync(cancellationToken) ?? throw new IOException("the guest agent's channel closed");
            if (line.Length == 0)
            {
                continue;
            }

            try
            {
                if (JsonNode.Parse(line) is JsonObject answer)
                {
                    return answer;
                }
            }
            catch (JsonException)
            {
            }
        }
    }

    private static JsonNode? Unwrap(JsonObject answer)
    {
        if (answer["error"] is JsonObject error)
        {
            throw new QgaException(error["class"]?.GetValue<string>() ?? "GenericError", error["desc"]?.GetValue<string>() ?? "");
        }

        return answer["return"];
    }

    public async ValueTask DisposeAsync()
    {
        await _stream.DisposeAsync();
        _socket.Dispose();
        _one.Dispose();
    }
}
