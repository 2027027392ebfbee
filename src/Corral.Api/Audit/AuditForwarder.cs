using System.Threading.Channels;
using Corral.Api.Client;
using Corral.Api.Pool;
using Corral.Api.Sessions;
using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Corral.Api.Audit;

/// <summary>
/// Sends the audit lines of HTTP actions a slave served (a console opened, the audit log read) to the master's audit
/// log, as xapi's slaves do with the pool-internal <c>pool.audit_log_append</c>: API calls reach the master anyway,
/// HTTP actions are served where they land. The lines stay in the slave's own log too. While the master cannot be
/// reached the lines wait (up to 10,000, the oldest dropped past that, and said so) and are sent when it can be.
/// </summary>
public sealed class AuditForwarder(MasterState master, IPoolDatabase database, IOptions<ApiOptions> api, RemoteHosts remote,
    SessionService sessions, TimeProvider clock, ILogger<AuditForwarder> logger) : BackgroundService
{
    public const string AppendMethod = "pool.audit_log_append";
    public static readonly TimeSpan RetryEvery = TimeSpan.FromSeconds(5);

    private const int Bound = 10_000;
    private static readonly EventId Forwarded = new(1322, "AuditLinesForwarded");
    private static readonly EventId NotForwarded = new(1323, "AuditLinesNotForwarded");
    private static readonly EventId DroppedLines = new(1324, "AuditLinesDroppedBeforeForwarding");

    private readonly Channel<string> _lines = Channel.CreateBounded<string>(new BoundedChannelOptions(Bound)
    {
        FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true,
    });

    private long _dropped;

    /// <summary>Whether this host is the master (its log is the pool's): nothing is forwarded then.</summary>
    public bool IsMaster => master.IsThisHost;

    /// <summary>Queues a line of this host's audit log for the master's, unless this host is the master.</summary>
    public void Forward(string line)
    {
        if (IsMaster)
        {
            return;
        }

        if (_lines.Reader.Count >= Bound)
        {
            Interlocked.Increment(ref _dropped);
        }

        _lines.Writer.TryWrite(line);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var pending = new List<string>();
        while (await _lines.Reader.WaitToReadAsync(stoppingToken))
        {
            while (pending.Count < 1000 && _lines.Reader.TryRead(out var line))
            {
                pending.Add(line);
            }

            if (Interlocked.Exchange(ref _dropped, 0) is > 0 and var dropped)
            {
                logger.LogWarning(DroppedLines, "{Count} audit lines were not sent to the master: it was out of reach for too long (they are in this host's log)", dropped);
            }

            try
            {
                await SendAsync(pending, stoppingToken);
                pending.Clear();
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested && ex is XenApiException or XenApiTransportException or HttpRequestException or IOException
                                           or OperationCanceledException || database.IsUnavailable(ex))
            {
                logger.LogWarning(NotForwarded, "{Count} audit lines wait for the master: {Reason}", pending.Count, ex.Message);
                await Task.Delay(RetryEvery, clock, stoppingToken);
            }
        }
    }

    /// <summary>Sends the lines to the master in order; the ones it took are removed from <paramref name="lines"/>.</summary>
    private async Task SendAsync(List<string> lines, CancellationToken cancellationToken)
    {
        var masterRef = master.MasterRef;
        if (masterRef is null || masterRef == api.Value.HostRef)
        {
            // This host is the master now (or none is known): the lines are in its own log, which is the pool's.
            lines.Clear();
            return;
        }

        var host = await database.TryGetAsync(XenClasses.Host, masterRef, cancellationToken)
            ?? throw new XenApiException(ErrorCodes.HandleInvalid, XenClasses.Host, masterRef);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(TimeSpan.FromSeconds(30));
        using var client = await remote.ConnectAsync(host.Get(XenApi.Host.Address), limit.Token);
        var secret = await sessions.GetPoolSecretAsync(limit.Token);
        var session = (string)(await client.CallAsync("session.slave_login", [api.Value.HostRef, secret], limit.Token))!;
        try
        {
            var sent = 0;
            try
            {
                foreach (var line in lines)
                {
                    await client.CallAsync(AppendMethod, [session, line], limit.Token);
                    sent++;
                }
            }
            finally
            {
                lines.RemoveRange(0, sent);
                if (sent > 0)
                {
                    logger.LogDebug(Forwarded, "{Count} audit lines sent to the master {Master}", sent, host.Get(XenApi.Host.NameLabel));
                }
            }
        }
        finally
        {
            try
            {
                using var brief = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                await client.CallAsync("session.logout", [session], brief.Token);
            }
            catch (Exception ex) when (ex is XenApiException or XenApiTransportException or HttpRequestException or OperationCanceledException)
            {
                // The session lapses on the master by itself.
                logger.LogDebug(ex, "Could not log out of the master after sending audit lines");
            }
        }
    }
}
