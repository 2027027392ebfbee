using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;

namespace Corral.Hypervisor.Qemu;

/// <summary>
/// The host end of the guest agent's virtio-serial port (<c>org.corral.guest_agent.0</c>), which QEMU exposes as
/// <c>guest-agent.sock</c>. The guest writes one JSON report per line every few seconds and answers commands
/// (<c>shutdown</c>, <c>reboot</c>) with <c>{"ack":"..."}</c>. The socket is reconnected whenever it drops while QEMU runs.
/// What the guest sends is bounded (<see cref="ChannelLimits"/>): lines past a length are skipped, lines past a rate are
/// dropped unread, and reports past one per interval only replace the latest, so a guest that floods its channel costs
/// its host a fixed buffer and a bounded rate of pool database writes.
/// </summary>
public sealed class GuestAgentChannel : IAsyncDisposable
{
    private readonly string _socketPath;
    private readonly string _vmUuid;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _ackWaiters = new(StringComparer.Ordinal);
    private readonly Task _loop;
    private volatile Socket? _socket;
    private volatile GuestAgentReport? _latest;
    private readonly ChannelLimits _limits;
    private readonly TimeProvider _time;
    private double _lineTokens;
    private long _tokensAt;
    private long _lastRaisedAt = long.MinValue;
    private long _dropped;
    private int _disposed;

    public GuestAgentChannel(string socketPath, string vmUuid, ILogger logger, ChannelLimits? limits = null, TimeProvider? time = null)
    {
        _socketPath = socketPath;
        _vmUuid = vmUuid;
        _logger = logger;
        _limits = limits ?? new ChannelLimits(64 * 1024, TimeSpan.FromSeconds(1), 20);
        _time = time ?? TimeProvider.System;
        _lineTokens = _limits.LinesPerSecond * 4;
        _tokensAt = _time.GetTimestamp();
        _loop = Task.Run(() => RunAsync(_stop.Token));
    }

    /// <summary>What a guest may send: the longest line, how often a report is passed on, lines per second (bursts of 4 s).</summary>
    public sealed record ChannelLimits(int MaxLineBytes, TimeSpan MinReportInterval, int LinesPerSecond);

    /// <summary>Lines dropped unread for the rate, or skipped for their length, since the channel opened.</summary>
    public long DroppedLines => Interlocked.Read(ref _dropped);

    /// <summary>Raised (on the channel's reader) for a report, at most once per <see cref="ChannelLimits.MinReportInterval"/>.</summary>
    public event EventHandler<GuestAgentReport>? ReportReceived;

    public GuestAgentReport? LatestReport => _latest;

    /// <summary>True while our end of the socket is connected to QEMU (which says nothing of the guest).</summary>
    public bool IsConnected => _socket is not null;

    /// <summary>Connected, and the guest reported within <paramref name="freshness"/>: the agent is alive to obey a command.</summary>
    public bool IsResponsive(TimeSpan freshness) => IsConnected && _latest is { } r && DateTime.UtcNow - r.ReceivedUtc < freshness;

    /// <summary>
    /// Sends one command line and waits for the guest's <c>{"ack":"command"}</c>. False when the channel is down or the guest
    /// did not acknowledge within <paramref name="ackTimeout"/>.
    /// </summary>
    public async Task<bool> SendCommandAsync(string command, TimeSpan ackTimeout, CancellationToken cancellationToken)
    {
        if (_socket is not { } socket)
        {
            return false;
        }

        var ack = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _ackWaiters[command] = ack;
        try
        {
            await _writeLock.WaitAsync(cancellationToken);
            try
            {
                await socket.SendAsync(Encoding.UTF8.GetBytes(command + "\n"), SocketFlags.None, cancellationToken);
            }
            finally
            {
                _writeLock.Release();
            }

            await ack.Task.WaitAsync(ackTimeout, cancellationToken);
            return true;
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or TimeoutException)
        {
            _logger.LogInformation("Guest agent of VM {Vm} did not take '{Command}': {Reason}", _vmUuid, command, ex.Message);
            return false;
        }
        finally
        {
            _ackWaiters.TryRemove(new KeyValuePair<string, TaskCompletionSource>(command, ack));
        }
    }

    private async Task RunAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(_socketPath), stop);
                _socket = socket;
                _logger.LogDebug("Guest agent channel of VM {Vm} connected", _vmUuid);
                using var stream = new NetworkStream(socket, ownsSocket: false);
                var reader = new BoundedLineReader(stream, _limits.MaxLineBytes);
                var skipped = 0L;
                while (await reader.ReadLineAsync(stop) is { } line)
                {
                    if (reader.SkippedLines != skipped)
                    {
                        Interlocked.Add(ref _dropped, reader.SkippedLines - skipped);
                        _logger.LogWarning("Guest agent of VM {Vm} sent a line longer than {Max} bytes: skipped", _vmUuid, _limits.MaxLineBytes);
                        skipped = reader.SkippedLines;
                    }

                    if (TakeLineToken())
                    {
                        HandleLine(line);
                    }
                }
            }
            catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
            {
            }
            catch (OperationCanceledException)
            {
                break;
            }
            finally
            {
                _socket = null;
                socket.Dispose();
            }

            try
            {
                await Task.Delay(TimeSpan.FromSeconds(1), stop);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    /// <summary>A token bucket of lines: <see cref="ChannelLimits.LinesPerSecond"/>, bursts of four seconds' worth.</summary>
    private bool TakeLineToken()
    {
        var now = _time.GetTimestamp();
        _lineTokens = Math.Min(_limits.LinesPerSecond * 4, _lineTokens + (_time.GetElapsedTime(_tokensAt, now).TotalSeconds * _limits.LinesPerSecond));
        _tokensAt = now;
        if (_lineTokens >= 1)
        {
            _lineTokens--;
            return true;
        }

        if (Interlocked.Increment(ref _dropped) % 1000 == 1)
        {
            _logger.LogWarning("Guest agent of VM {Vm} sends more than {Rate} lines a second: the excess is dropped ({Dropped} so far)", _vmUuid,
                _limits.LinesPerSecond, DroppedLines);
        }

        return false;
    }

    internal void HandleLine(string line)
    {
        if (TryParseReport(line, DateTime.UtcNow) is { } report)
        {
            _latest = report;
            var now = _time.GetTimestamp();
            if (_lastRaisedAt != long.MinValue && _time.GetElapsedTime(_lastRaisedAt, now) < _limits.MinReportInterval)
            {
                // Kept as the latest (read by whoever asks), but no write for it: one per interval reaches the database.
                return;
            }

            _lastRaisedAt = now;
            try
            {
                ReportReceived?.Invoke(this, report);
            }
            catch (Exception ex)
            {
                _logger.LogError(ex, "A guest report handler failed for VM {Vm}", _vmUuid);
            }

            return;
        }

        if (TryParseAck(line) is { } acked)
        {
            _logger.LogInformation("Guest agent of VM {Vm} acknowledged '{Command}'", _vmUuid, acked);
            if (_ackWaiters.TryGetValue(acked, out var waiter))
            {
                waiter.TrySetResult();
            }

            return;
        }

        _logger.LogDebug("Guest agent of VM {Vm}: {Line}", _vmUuid, line);
    }

    /// <summary>Reads one guest agent report line; null for anything else (acks, noise).</summary>
    public static GuestAgentReport? TryParseReport(string line, DateTime receivedUtc)
    {
        try
        {
            if (JsonNode.Parse(line) is not JsonObject o || o["agent"] is null)
            {
                return null;
            }

            static Dictionary<string, string> Map(JsonNode? node) =>
                node is JsonObject m ? m.ToDictionary(kv => kv.Key, kv => kv.Value?.ToString() ?? "", StringComparer.Ordinal) : [];
            var uptime = o["uptime"] is JsonValue u && u.TryGetValue<double>(out var seconds) && double.IsFinite(seconds) && seconds >= 0 ? seconds : 0;
            return new GuestAgentReport(o["version"]?.ToString() ?? "0", TimeSpan.FromSeconds(uptime), Map(o["os"]), Map(o["networks"]),
                Map(o["pv_drivers"]), receivedUtc);
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or FormatException)
        {
            return null;
        }
    }

    /// <summary>The command an <c>{"ack":"..."}</c> line acknowledges, or null.</summary>
    public static string? TryParseAck(string line)
    {
        try
        {
            return JsonNode.Parse(line) is JsonObject o && o["ack"] is JsonValue v && v.TryGetValue<string>(out var command) ? command : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync();
        _socket?.Dispose();
        await _loop;
        _stop.Dispose();
    }
}
