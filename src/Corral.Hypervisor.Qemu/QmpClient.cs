using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Corral.Hypervisor.Qemu;

/// <summary>A QMP error reply: QEMU's error class and description.</summary>
public sealed class QmpException(string errorClass, string description) : Exception($"{errorClass}: {description}")
{
    public string ErrorClass { get; } = errorClass;
}

/// <summary>
/// The QEMU Machine Protocol over a Unix socket: JSON objects one per line, commands matched to replies by id,
/// asynchronous events handed to <see cref="EventReceived"/>. The connection closing means QEMU has gone.
/// </summary>
public sealed class QmpClient : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly ConcurrentDictionary<string, TaskCompletionSource<JsonNode?>> _pending = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task _reader = Task.CompletedTask;
    private long _nextId;

    private QmpClient(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: false);
    }

    /// <summary>Raised for each QMP event (name, data).</summary>
    public event Action<string, JsonNode?>? EventReceived;

    /// <summary>Completes when QEMU closes the connection (it exited, or another client took over).</summary>
    public Task Closed => _closed.Task;

    public static async Task<QmpClient> ConnectAsync(string socketPath, CancellationToken cancellationToken)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        var client = new QmpClient(socket);
        var greeting = new TaskCompletionSource<JsonNode?>(TaskCreationOptions.RunContinuationsAsynchronously);
        client._pending["greeting"] = greeting;
        client._reader = Task.Run(client.ReadLoopAsync, CancellationToken.None);
        await greeting.Task.WaitAsync(TimeSpan.FromSeconds(10), cancellationToken).ConfigureAwait(false);
        await client.ExecuteAsync("qmp_capabilities", null, cancellationToken).ConfigureAwait(false);
        return client;
    }

    public async Task<JsonNode?> ExecuteAsync(string command, JsonObject? arguments, CancellationToken cancellationToken)
    {
        var id = "c" + Interlocked.Increment(ref _nextId);
        var reply = new TaskCompletionSource<JsonNode?>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[id] = reply;
        var message = new JsonObject { ["execute"] = command, ["id"] = id };
        if (arguments is not null)
        {
            message["arguments"] = arguments;
        }

        var bytes = Encoding.UTF8.GetBytes(message.ToJsonString() + "\n");
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await _stream.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
        }
        catch (IOException ex)
        {
            _pending.TryRemove(id, out _);
            throw new QmpException("Disconnected", ex.Message);
        }
        finally
        {
            _writeLock.Release();
        }

        using var registration = cancellationToken.Register(() => reply.TrySetCanceled(cancellationToken));
        return await reply.Task.ConfigureAwait(false);
    }

    private async Task ReadLoopAsync()
    {
        using var reader = new StreamReader(_stream, Encoding.UTF8);
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var line = await reader.ReadLineAsync(_stop.Token).ConfigureAwait(false);
                if (line is null)
                {
                    break;
                }

                if (string.IsNullOrWhiteSpace(line))
                {
                    continue;
                }

                Dispatch(JsonNode.Parse(line) as JsonObject);
            }
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException or JsonException)
        {
        }
        finally
        {
            foreach (var pending in _pending.Values)
            {
                pending.TrySetException(new QmpException("Disconnected", "QEMU closed the QMP connection"));
            }

            _closed.TrySetResult();
        }
    }

    internal void Dispatch(JsonObject? message)
    {
        if (message is null)
        {
            return;
        }

        if (message.ContainsKey("QMP"))
        {
            if (_pending.TryRemove("greeting", out var greeting))
            {
                greeting.TrySetResult(message);
            }

            return;
        }

        if (message["event"] is JsonValue name)
        {
            EventReceived?.Invoke(name.GetValue<string>(), message["data"]);
            return;
        }

        var id = message["id"]?.GetValue<string>();
        if (id is null || !_pending.TryRemove(id, out var reply))
        {
            return;
        }

        if (message["error"] is JsonObject error)
        {
            reply.TrySetException(new QmpException(error["class"]?.GetValue<string>() ?? "GenericError", error["desc"]?.GetValue<string>() ?? ""));
        }
        else
        {
            reply.TrySetResult(message["return"]);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _socket.Dispose();
        try
        {
            await _reader.ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or OperationCanceledException)
        {
        }

        await _stream.DisposeAsync().ConfigureAwait(false);
        _stop.Dispose();
        _writeLock.Dispose();
    }
}
