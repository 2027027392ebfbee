using System.Net.Sockets;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;

namespace Corral.Hypervisor.Qemu.GuestAgent;

/// <summary>
/// A VM's guest tools as the QEMU guest agent provides them: every <see cref="PollInterval"/> while QEMU runs, the agent
/// is asked what it is (<c>guest-info</c>), the guest's OS (<c>guest-get-osinfo</c>), its addresses
/// (<c>guest-network-get-interfaces</c>), its uptime (its <c>/proc/uptime</c>, read), its file systems
/// (<c>guest-get-fsinfo</c>) and logged-in users (<c>guest-get-users</c>), and the answer becomes the VM's <see cref="GuestAgentReport"/>, its networks
/// keyed by the VM's cards as XenServer's tools key them. A guest without the agent just never answers: each poll then
/// costs one timed-out question, and the VM shows no tools. The connection to QEMU's end of the port is made again
/// whenever it drops.
/// </summary>
public sealed class QgaGuestTools : IAsyncDisposable
{
    private readonly string _socketPath;
    private readonly string _vmUuid;
    private readonly Func<IEnumerable<NicSpec>> _nics;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private volatile QgaClient? _client;
    private volatile QgaAgentInfo? _info;
    private volatile GuestAgentReport? _latest;
    private readonly TimeSpan _freshness;
    private long _answeredAt = long.MinValue;
    private bool _silenced;
    private int _disposed;

    /// <param name="nics">The VM's cards now (those plugged since it started included), whose MACs key the addresses.</param>
    /// <param name="freshness">How long an agent that answered may stay silent before <see cref="Silenced"/>.</param>
    public QgaGuestTools(string socketPath, string vmUuid, Func<IEnumerable<NicSpec>> nics, TimeSpan pollInterval, TimeSpan freshness, ILogger logger,
        TimeProvider? time = null)
    {
        _freshness = freshness;
        _socketPath = socketPath;
        _vmUuid = vmUuid;
        _nics = nics;
        PollInterval = pollInterval;
        _logger = logger;
        _time = time ?? TimeProvider.System;
        _loop = Task.Run(() => RunAsync(_stop.Token));
    }

    public TimeSpan PollInterval { get; }

    /// <summary>Raised after each poll the agent answered.</summary>
    public event EventHandler<GuestAgentReport>? ReportReceived;

    /// <summary>Raised once when an agent that answered has not answered for the freshness given; again only after it answered since.</summary>
    public event EventHandler? Silenced;

    public GuestAgentReport? LatestReport => _latest;

    /// <summary>Whether the agent answered within <paramref name="freshness"/>: alive to be asked to shut the guest down.</summary>
    public bool IsResponsive(TimeSpan freshness)
    {
        var at = Interlocked.Read(ref _answeredAt);
        return _client is not null && at != long.MinValue && _time.GetElapsedTime(at) < freshness;
    }

    /// <summary>
    /// Asks the agent to power the guest off (<c>powerdown</c>) or reboot it (<c>reboot</c>) when it is responsive and has
    /// <c>guest-shutdown</c> enabled; false otherwise, or when it did not take the command.
    /// </summary>
    public async Task<bool> ShutdownAsync(string mode, TimeSpan freshness, CancellationToken cancellationToken)
    {
        if (!IsResponsive(freshness) || _info is not { } info || !info.Has("guest-shutdown") || _client is not { } client)
        {
            return false;
        }

        try
        {
            await client.SendAsync("guest-shutdown", new JsonObject { ["mode"] = mode }, QgaQueries.Timeout, cancellationToken);
            return true;
        }
        catch (Exception ex) when (ex is TimeoutException or IOException or SocketException or ObjectDisposedException)
        {
            _logger.LogInformation("QEMU guest agent of VM {Vm} did not take guest-shutdown ({Mode}): {Reason}", _vmUuid, mode, ex.Message);
            return false;
        }
    }

    /// <summary>
    /// Asks the agent something over this VM's one connection to it (QEMU takes one client on the port), between polls.
    /// Throws <see cref="TimeoutException"/> when it does not answer, <see cref="IOException"/> when not connected.
    /// </summary>
    public async Task<T> AskAsync<T>(Func<QgaClient, CancellationToken, Task<T>> question, CancellationToken cancellationToken) =>
        await question(_client ?? throw new IOException("not connected to the guest agent's port"), cancellationToken);

    private async Task RunAsync(CancellationToken stop)
    {
        using var timer = new PeriodicTimer(PollInterval, _time);
        var silent = 0;
        var skip = 0;
        do
        {
            if (skip-- > 0)
            {
                continue;
            }

            try
            {
                _client ??= await QgaClient.ConnectAsync(_socketPath, stop);
                await PollAsync(_client, stop);
                silent = 0;
            }
            catch (TimeoutException)
            {
                // No agent in the guest (yet), or one that sends what was not asked: the VM shows no tools until one
                // answers, and it is asked less often (every fourth poll at most), so that a guest flooding its port
                // costs its host little.
                skip = (1 << Math.Min(silent++, 2)) - 1;
            }
            catch (QgaException ex)
            {
                _logger.LogDebug("QEMU guest agent of VM {Vm} refused a question: {Reason}", _vmUuid, ex.Message);
            }
            catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
            {
                await DropAsync();
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                break;
            }

            NoticeSilence();
        }
        while (await timer.WaitForNextTickAsync(stop).AsTask().ContinueWith(t => t.IsCompletedSuccessfully && t.Result, TaskScheduler.Default));
    }

    /// <summary>An agent that answered and is now past its freshness is reported silent, once.</summary>
    private void NoticeSilence()
    {
        if (_silenced || Interlocked.Read(ref _answeredAt) == long.MinValue || _time.GetElapsedTime(Interlocked.Read(ref _answeredAt)) < _freshness)
        {
            return;
        }

        _silenced = true;
        _logger.LogInformation("QEMU guest agent of VM {Vm} has not answered for {Seconds} s", _vmUuid, (int)_freshness.TotalSeconds);
        try
        {
            Silenced?.Invoke(this, EventArgs.Empty);
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "A guest agent silence handler failed for VM {Vm}", _vmUuid);
        }
    }

    private async Task PollAsync(QgaClient client, CancellationToken stop)
    {
        var info = await QgaQueries.InfoAsync(client, stop);
        var os = info.Has("guest-get-osinfo") ? await QgaQueries.OsInfoAsync(client, stop) : null;
        var interfaces = info.Has("guest-network-get-interfaces") ? await QgaQueries.InterfacesAsync(client, stop) : [];
        var uptime = await QgaQueries.UptimeAsync(client, info, stop);
        var volumes = info.Has("guest-get-fsinfo")
            ? await OptionalAsync(() => QgaQueries.FileSystemsAsync(client, stop), QgaQueries.Volumes, _latest?.Volumes)
            : null;
        var users = info.Has("guest-get-users") ? await OptionalAsync(() => QgaQueries.UsersAsync(client, stop), QgaQueries.Users, _latest?.Users) : null;
        if (_info is null)
        {
            _logger.LogInformation("QEMU guest agent {Version} answers in VM {Vm}", info.Version, _vmUuid);
        }

        _info = info;
        Interlocked.Exchange(ref _answeredAt, _time.GetTimestamp());
        _silenced = false;
        var report = new GuestAgentReport(info.Version, uptime ?? TimeSpan.Zero,
            os is null ? new Dictionary<string, string>() : QgaQueries.XenOsVersion(os),
            QgaQueries.XenNetworks(interfaces, _nics().ToDictionary(n => n.Mac.ToLowerInvariant(), n => n.Index, StringComparer.Ordinal)),
            new Dictionary<string, string>(),
            _time.GetUtcNow().UtcDateTime,
            info.Has("guest-fsfreeze-freeze") && info.Has("guest-fsfreeze-thaw"),
            volumes,
            users);
        _latest = report;
        try
        {
            ReportReceived?.Invoke(this, report);
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "A guest report handler failed for VM {Vm}", _vmUuid);
        }
    }

    /// <summary>
    /// A question whose refusal must not cost the rest of the report: a Windows agent fails <c>guest-get-fsinfo</c> on
    /// some volumes, and an agent may have a command listed but not working. The last answer stands then (null if none),
    /// so that the guest metrics do not flap.
    /// </summary>
    private async Task<TOut?> OptionalAsync<TIn, TOut>(Func<Task<TIn>> question, Func<TIn, TOut> convert, TOut? last) where TOut : class
    {
        try
        {
            return convert(await question());
        }
        catch (QgaException ex)
        {
            _logger.LogDebug("QEMU guest agent of VM {Vm} refused an optional question: {Reason}", _vmUuid, ex.Message);
            return last;
        }
    }

    private async Task DropAsync()
    {
        if (_client is { } client)
        {
            _client = null;
            await client.DisposeAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        // Once when QEMU exits, again when the process handle is let go.
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync();
        try
        {
            await _loop;
        }
        catch (OperationCanceledException)
        {
        }

        await DropAsync();
        _stop.Dispose();
    }
}
