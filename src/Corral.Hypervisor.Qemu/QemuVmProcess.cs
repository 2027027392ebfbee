using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;

namespace Corral.Hypervisor.Qemu;

/// <summary>One QEMU process, started by us or adopted, driven over QMP, with its guest agent channel.</summary>
public sealed class QemuVmProcess : IVmProcess
{
    private readonly VmRuntimePaths _paths;
    private readonly QmpClient _qmp;
    private readonly QemuOptions _options;
    private readonly ILogger _logger;
    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _agentWrite = new(1, 1);
    private readonly Task _agentLoop;
    private readonly Task _exitWatch;
    private volatile Socket? _agentSocket;
    private volatile GuestAgentReport? _latest;

    internal QemuVmProcess(string vmUuid, int pid, VmRuntimePaths paths, QmpClient qmp, bool paravirtual, QemuOptions options, ILogger logger)
    {
        VmUuid = vmUuid;
        ProcessId = pid;
        _paths = paths;
        _qmp = qmp;
        _options = options;
        _logger = logger;
        _qmp.EventReceived += OnQmpEvent;
        _agentLoop = paravirtual ? Task.Run(() => GuestAgentLoopAsync(_stop.Token)) : Task.CompletedTask;
        _exitWatch = Task.Run(() => WatchExitAsync(_stop.Token));
    }

    public string VmUuid { get; }

    public int ProcessId { get; }

    public Task Exited => _exited.Task;

    public GuestAgentReport? LatestGuestReport => _latest;

    public event EventHandler<VmProcessEventArgs>? EventReceived;

    /// <summary>True while /proc/pid is a QEMU running this VM (a reused pid is not).</summary>
    public static bool IsAlive(int pid, string vmUuid)
    {
        try
        {
            var cmdline = File.ReadAllText($"/proc/{pid}/cmdline");
            if (!cmdline.Contains(vmUuid, StringComparison.Ordinal))
            {
                return false;
            }

            // A zombie has exited; only its parent has not reaped it yet.
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return !stat[(stat.LastIndexOf(')') + 2)..].StartsWith('Z');
        }
        catch (IOException)
        {
            return false;
        }
    }

    private async Task WatchExitAsync(CancellationToken stop)
    {
        try
        {
            while (IsAlive(ProcessId, VmUuid))
            {
                await Task.WhenAny(_qmp.Closed, Task.Delay(TimeSpan.FromSeconds(1), stop)).ConfigureAwait(false);
                if (_qmp.Closed.IsCompleted)
                {
                    await Task.Delay(50, stop).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException)
        {
            return;
        }

        _exited.TrySetResult();
        EventReceived?.Invoke(this, new VmProcessEventArgs(VmProcessEventKind.Exited));
    }

    private void OnQmpEvent(string name, JsonNode? data)
    {
        var kind = name switch
        {
            "SHUTDOWN" => VmProcessEventKind.GuestShutdown,
            "RESET" => VmProcessEventKind.GuestReset,
            "STOP" => VmProcessEventKind.Stopped,
            "RESUME" => VmProcessEventKind.Resumed,
            _ => (VmProcessEventKind?)null,
        };
        if (kind is { } k)
        {
            EventReceived?.Invoke(this, new VmProcessEventArgs(k, data?.ToJsonString() ?? ""));
        }
    }

    private async Task GuestAgentLoopAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested && !_exited.Task.IsCompleted)
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(_paths.GuestAgent), stop).ConfigureAwait(false);
                _agentSocket = socket;
                using var stream = new NetworkStream(socket, ownsSocket: false);
                using var reader = new StreamReader(stream, Encoding.UTF8);
                while (await reader.ReadLineAsync(stop).ConfigureAwait(false) is { } line)
                {
                    HandleAgentLine(line);
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
                _agentSocket = null;
                socket.Dispose();
            }

            try
            {
                await Task.Delay(1000, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    internal void HandleAgentLine(string line)
    {
        if (TryParseReport(line, DateTime.UtcNow) is { } report)
        {
            _latest = report;
            EventReceived?.Invoke(this, new VmProcessEventArgs(VmProcessEventKind.GuestReport));
        }
        else
        {
            _logger.LogDebug("Guest agent of {Vm}: {Line}", VmUuid, line);
        }
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
            var uptime = o["uptime"] is JsonValue u && u.TryGetValue<double>(out var seconds) ? seconds : 0;
            return new GuestAgentReport(o["version"]?.ToString() ?? "0", TimeSpan.FromSeconds(uptime), Map(o["os"]), Map(o["networks"]), Map(o["pv_drivers"]), receivedUtc);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private bool AgentIsFresh => _agentSocket is not null && _latest is { } r && DateTime.UtcNow - r.ReceivedUtc < _options.GuestAgentFreshness;

    private async Task<bool> TellAgentAsync(string command, CancellationToken cancellationToken)
    {
        if (!AgentIsFresh || _agentSocket is not { } socket)
        {
            return false;
        }

        await _agentWrite.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await socket.SendAsync(Encoding.UTF8.GetBytes(command + "\n"), SocketFlags.None, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            return false;
        }
        finally
        {
            _agentWrite.Release();
        }
    }

    private Task<JsonNode?> Qmp(string command, JsonObject? arguments, CancellationToken cancellationToken) =>
        _qmp.ExecuteAsync(command, arguments, cancellationToken);

    public async Task<VmRunState> QueryStateAsync(CancellationToken cancellationToken)
    {
        var status = await Qmp("query-status", null, cancellationToken).ConfigureAwait(false);
        return status?["status"]?.GetValue<string>() switch
        {
            "running" => VmRunState.Running,
            "paused" or "prelaunch" or "inmigrate" or "suspended" => VmRunState.Paused,
            "postmigrate" or "finish-migrate" => VmRunState.Migrating,
            "shutdown" => VmRunState.ShutDown,
            "internal-error" or "guest-panicked" or "io-error" => VmRunState.Crashed,
            _ => VmRunState.Unknown,
        };
    }

    public Task PauseAsync(CancellationToken cancellationToken) => Qmp("stop", null, cancellationToken);

    public Task ResumeAsync(CancellationToken cancellationToken) => Qmp("cont", null, cancellationToken);

    public async Task RequestShutdownAsync(CancellationToken cancellationToken)
    {
        if (!await TellAgentAsync("shutdown", cancellationToken).ConfigureAwait(false))
        {
            await Qmp("system_powerdown", null, cancellationToken).ConfigureAwait(false);
        }
    }

    public async Task RequestRebootAsync(CancellationToken cancellationToken)
    {
        if (!await TellAgentAsync("reboot", cancellationToken).ConfigureAwait(false))
        {
            await Qmp("system_reset", null, cancellationToken).ConfigureAwait(false);
        }
    }

    public Task ResetAsync(CancellationToken cancellationToken) => Qmp("system_reset", null, cancellationToken);

    public async Task KillAsync(CancellationToken cancellationToken)
    {
        try
        {
            await Qmp("quit", null, cancellationToken).WaitAsync(TimeSpan.FromSeconds(2), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is QmpException or TimeoutException)
        {
        }

        try
        {
            await _exited.Task.WaitAsync(TimeSpan.FromSeconds(3), cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            if (IsAlive(ProcessId, VmUuid))
            {
                // Checked just above: this pid is still QEMU for this VM, not a reused pid.
                using var process = System.Diagnostics.Process.GetProcessById(ProcessId);
                process.Kill();
            }

            await _exited.Task.WaitAsync(TimeSpan.FromSeconds(10), cancellationToken).ConfigureAwait(false);
        }

        try
        {
            Directory.Delete(_paths.Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    public async Task ChangeMediumAsync(int diskIndex, string? isoPath, CancellationToken cancellationToken)
    {
        var id = $"drive{diskIndex}";
        if (isoPath is null)
        {
            await Qmp("eject", new JsonObject { ["device"] = id, ["force"] = true }, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            await Qmp("blockdev-change-medium", new JsonObject
            {
                ["device"] = id,
                ["filename"] = isoPath,
                ["format"] = "raw",
                ["read-only-mode"] = "read-only",
            }, cancellationToken).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        // Disposing lets go of the process; it does not stop it (an agent restart must leave VMs running).
        await _stop.CancelAsync().ConfigureAwait(false);
        _agentSocket?.Dispose();
        await _qmp.DisposeAsync().ConfigureAwait(false);
        await Task.WhenAll(_agentLoop, _exitWatch).ConfigureAwait(false);
        _stop.Dispose();
        _agentWrite.Dispose();
    }
}
