using System.Collections.Concurrent;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Corral.Hypervisor.Qemu;

/// <summary>A QMP error reply: QEMU's error class (GenericError, CommandNotFound, DeviceNotFound...) and description.</summary>
public class QmpException(string errorClass, string description, Exception? inner = null)
    : Exception($"{errorClass}: {description}", inner)
{
    public string ErrorClass { get; } = errorClass;

    public string Description { get; } = description;
}

/// <summary>The QMP connection is gone: QEMU exited (or the connection was closed on our side).</summary>
public sealed class QmpDisconnectedException(string description, Exception? inner = null)
    : QmpException("Disconnected", description, inner);

/// <summary>One asynchronous QMP event (SHUTDOWN, RESET, STOP, RESUME, POWERDOWN, MIGRATION...).</summary>
public sealed class QmpEventArgs(string name, JsonObject? data, DateTimeOffset timestamp) : EventArgs
{
    public string Name { get; } = name;

    public JsonObject? Data { get; } = data;

    /// <summary>When QEMU emitted the event (its own clock).</summary>
    public DateTimeOffset Timestamp { get; } = timestamp;
}

public enum QmpMessageKind
{
    Greeting,
    Return,
    Error,
    Event,
    Unknown,
}

/// <summary>One line of the QMP stream, classified.</summary>
public sealed record QmpMessage(QmpMessageKind Kind, JsonObject Raw, string? Id = null, JsonNode? Return = null, string? ErrorClass = null,
    string? ErrorDescription = null, QmpEventArgs? Event = null)
{
    /// <summary>Parses one QMP line. Throws <see cref="JsonException"/> when it is not a JSON object.</summary>
    public static QmpMessage Parse(string line)
    {
        if (JsonNode.Parse(line) is not JsonObject o)
        {
            throw new JsonException("a QMP message is a JSON object");
        }

        var id = o["id"] is JsonValue idValue ? idValue.ToJsonString() : null;
        if (o["id"] is JsonValue s && s.TryGetValue<string>(out var text))
        {
            id = text;
        }

        if (o.ContainsKey("QMP"))
        {
            return new QmpMessage(QmpMessageKind.Greeting, o);
        }

        if (o["event"] is JsonValue name && name.TryGetValue<string>(out var eventName))
        {
            var timestamp = DateTimeOffset.UnixEpoch;
            if (o["timestamp"] is JsonObject ts && ts["seconds"] is JsonValue sec && sec.TryGetValue<long>(out var seconds))
            {
                var micro = ts["microseconds"] is JsonValue us && us.TryGetValue<long>(out var m) ? m : 0;
                timestamp = DateTimeOffset.FromUnixTimeSeconds(seconds).AddTicks(micro * 10);
            }

            return new QmpMessage(QmpMessageKind.Event, o, Event: new QmpEventArgs(eventName, o["data"] as JsonObject, timestamp));
        }

        if (o["error"] is JsonObject error)
        {
            return new QmpMessage(QmpMessageKind.Error, o, id, ErrorClass: error["class"]?.ToString() ?? "GenericError",
                ErrorDescription: error["desc"]?.ToString() ?? "");
        }

        if (o.ContainsKey("return"))
        {
            return new QmpMessage(QmpMessageKind.Return, o, id, Return: o["return"]);
        }

        return new QmpMessage(QmpMessageKind.Unknown, o, id);
    }
}

/// <summary>
/// The QEMU Machine Protocol over a Unix socket: one JSON object per line, commands matched to replies by id (so callers
/// may run commands concurrently), asynchronous events handed to <see cref="EventReceived"/>. The connection closing means
/// QEMU has gone (QEMU serves one QMP client per socket, so nobody else takes it over while we hold it).
/// </summary>
public sealed class QmpClient : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly ConcurrentDictionary<string, TaskCompletionSource<JsonNode?>> _pending = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<JsonObject> _greeting = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task _reader = Task.CompletedTask;
    private long _nextId;
    private int _disposed;

    private QmpClient(Socket socket, ILogger logger)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: false);
        _logger = logger;
    }

    /// <summary>
    /// Raised for each QMP event, on the connection's reader: handlers must return quickly (no waiting on QMP replies,
    /// which that same reader delivers).
    /// </summary>
    public event EventHandler<QmpEventArgs>? EventReceived;

    /// <summary>Completes when the connection has closed (QEMU exited, or this client was disposed).</summary>
    public Task Closed => _closed.Task;

    /// <summary>QEMU's greeting (<c>{"QMP": {"version": ..., "capabilities": [...]}}</c>).</summary>
    public JsonObject Greeting { get; private set; } = [];

    /// <summary>"major.minor.micro" from the greeting.</summary>
    public string QemuVersion
    {
        get
        {
            var v = Greeting["QMP"]?["version"]?["qemu"];
            return v is null ? "unknown" : string.Create(CultureInfo.InvariantCulture, $"{v["major"]}.{v["minor"]}.{v["micro"]}");
        }
    }

    /// <summary>Connects, reads the greeting and leaves capabilities negotiation mode (<c>qmp_capabilities</c>).</summary>
    public static async Task<QmpClient> ConnectAsync(string socketPath, CancellationToken cancellationToken, TimeSpan? greetingTimeout = null,
        ILogger? logger = null)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        var client = new QmpClient(socket, logger ?? NullLogger.Instance);
        try
        {
            client._reader = Task.Run(client.ReadLoopAsync, CancellationToken.None);
            var timeout = greetingTimeout ?? TimeSpan.FromSeconds(10);
            client.Greeting = await client._greeting.Task.WaitAsync(timeout, cancellationToken);
            await client.ExecuteAsync("qmp_capabilities", null, cancellationToken).WaitAsync(timeout, cancellationToken);
            return client;
        }
        catch (TimeoutException ex)
        {
            await client.DisposeAsync();
            throw new QmpDisconnectedException($"no QMP greeting on {socketPath} (is another client connected?)", ex);
        }
        catch
        {
            await client.DisposeAsync();
            throw;
        }
    }

    /// <summary>Runs one command and returns its <c>return</c> value; a QMP error reply throws <see cref="QmpException"/>.</summary>
    public async Task<JsonNode?> ExecuteAsync(string command, JsonObject? arguments, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(command);
        cancellationToken.ThrowIfCancellationRequested();
        var id = "corral-" + Interlocked.Increment(ref _nextId).ToString(CultureInfo.InvariantCulture);
        var reply = new TaskCompletionSource<JsonNode?>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[id] = reply;
        if (_closed.Task.IsCompleted && _pending.TryRemove(id, out _))
        {
            throw new QmpDisconnectedException("QEMU closed the QMP connection");
        }

        var message = new JsonObject { ["execute"] = command, ["id"] = id };
        if (arguments is not null)
        {
            message["arguments"] = arguments.DeepClone();
        }

        var bytes = Encoding.UTF8.GetBytes(message.ToJsonString() + "\n");
        try
        {
            await _writeLock.WaitAsync(cancellationToken);
            try
            {
                await _stream.WriteAsync(bytes, cancellationToken);
            }
            finally
            {
                _writeLock.Release();
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
            _pending.TryRemove(id, out _);
            throw new QmpDisconnectedException("QEMU closed the QMP connection: " + ex.Message, ex);
        }
        catch
        {
            _pending.TryRemove(id, out _);
            throw;
        }

        using var registration = cancellationToken.Register(() =>
        {
            if (_pending.TryRemove(id, out var abandoned))
            {
                abandoned.TrySetCanceled(cancellationToken);
            }
        });
        return await reply.Task;
    }

    private async Task ReadLoopAsync()
    {
        try
        {
            using var reader = new StreamReader(_stream, Encoding.UTF8, detectEncodingFromByteOrderMarks: false, leaveOpen: true);
            while (await reader.ReadLineAsync(_stop.Token) is { } line)
            {
                if (string.IsNullOrWhiteSpace(line))
                {
                    continue;
                }

                QmpMessage message;
                try
                {
                    message = QmpMessage.Parse(line);
                }
                catch (JsonException ex)
                {
                    _logger.LogWarning(ex, "Unreadable QMP line: {Line}", line);
                    continue;
                }

                Dispatch(message);
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
        }
        finally
        {
            _closed.TrySetResult();
            _greeting.TrySetException(new QmpDisconnectedException("the QMP connection closed before QEMU's greeting"));
            foreach (var id in _pending.Keys)
            {
                if (_pending.TryRemove(id, out var pending))
                {
                    pending.TrySetException(new QmpDisconnectedException("QEMU closed the QMP connection"));
                }
            }
        }
    }

    private void Dispatch(QmpMessage message)
    {
        switch (message.Kind)
        {
            case QmpMessageKind.Greeting:
                _greeting.TrySetResult(message.Raw);
                break;
            case QmpMessageKind.Event:
                try
                {
                    EventReceived?.Invoke(this, message.Event!);
                }
                catch (Exception ex)
                {
                    _logger.LogError(ex, "A QMP event handler failed on {Event}", message.Event!.Name);
                }

                break;
            case QmpMessageKind.Return when message.Id is not null && _pending.TryRemove(message.Id, out var reply):
                reply.TrySetResult(message.Return);
                break;
            case QmpMessageKind.Error when message.Id is not null && _pending.TryRemove(message.Id, out var failed):
                failed.TrySetException(new QmpException(message.ErrorClass!, message.ErrorDescription!));
                break;
            default:
                _logger.LogDebug("QMP message matched no command: {Message}", message.Raw.ToJsonString());
                break;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync();
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
        }

        _socket.Dispose();
        await _reader;
        await _stream.DisposeAsync();
        _stop.Dispose();
    }
}
