using System.Text;
using System.Threading.Channels;
using Corral.Api.Dispatch;
using Corral.Api.Sessions;
using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Corral.Api.Audit;

/// <summary>Where the audit log is kept and how much of it (section <c>Corral:Api:Audit</c>).</summary>
public sealed class AuditOptions : IOptionsWithProblems
{
    /// <summary>A file past this size is rotated (audit.log becomes audit.log.1, and so on).</summary>
    public long MaxFileBytes { get; set; } = 10L * 1024 * 1024;

    /// <summary>How many rotated files are kept besides the current one.</summary>
    public int Files { get; set; } = 5;

    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (MaxFileBytes < 64 * 1024)
        {
            problems.Add($"Corral:Api:Audit:MaxFileBytes ({MaxFileBytes}) must be at least 64 KiB");
        }

        if (Files is < 1 or > 100)
        {
            problems.Add($"Corral:Api:Audit:Files ({Files}) must be 1-100");
        }

        return problems;
    }
}

/// <summary>
/// The audit log of the calls this host served (xapi's <c>/var/log/audit.log</c>): one line per call that changes
/// something, allowed or denied, with its outcome (<see cref="AuditLine"/>), written in the background to
/// <c>audit.log</c> in the host's state directory (rotated, a bounded number of files kept) and to the agent's log
/// (category <c>Corral.Api.Audit.AuditLog</c>, for the journal and whatever collects it). <c>GET /audit_log</c> and
/// <c>xe audit-log-get</c> read it back.
/// </summary>
public sealed class AuditLog(IPoolDatabase database, IOptions<ApiOptions> api, IOptions<AuditOptions> options, TimeProvider clock, AuditForwarder forwarder,
    ILogger<AuditLog> logger) : BackgroundService
{
    public const string FileName = "audit.log";

    /// <summary>The longest line <see cref="AppendForwarded"/> takes from another host.</summary>
    public const int MaxForwardedLine = 64 * 1024;

    private static readonly EventId Audited = new(1320, "Audit");
    private static readonly EventId Dropped = new(1321, "AuditLinesDropped");

    private readonly Channel<string> _lines = Channel.CreateBounded<string>(new BoundedChannelOptions(10_000) { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true });
    private readonly SemaphoreSlim _file = new(1, 1);
    private long _dropped;
    private string? _hostName;

    /// <summary>The current file, or null when the host has no state directory (the lines go to the agent's log only).</summary>
    public string? Path => api.Value.StateDirectory.Length == 0 ? null : System.IO.Path.Combine(api.Value.StateDirectory, FileName);

    /// <summary>Records a call: <paramref name="arguments"/> as <see cref="DescribeAsync"/> gave them before it ran.</summary>
    public async Task RecordAsync(string sessionRef, SessionAccess? who, string userName, bool allowed, string outcome, string action,
        IReadOnlyList<AuditArgument> arguments, CancellationToken cancellationToken)
    {
        var line = AuditLine.Format(clock.GetUtcNow().UtcDateTime, await HostNameAsync(cancellationToken), AuditLine.TrackId(sessionRef),
            who?.SubjectIdentifier ?? "", who?.UserName ?? userName, allowed, outcome, http: false, action, arguments);
        Write(line);
    }

    /// <summary>
    /// Records an HTTP action (xapi's <c>http/...</c> permissions: a console opened, the audit log read) served by this
    /// host; a slave also sends the line to the master's log (<see cref="AuditForwarder"/>), as xapi's slaves do.
    /// </summary>
    public async Task RecordHttpAsync(string sessionRef, SessionAccess who, bool allowed, string outcome, string action,
        IReadOnlyList<AuditArgument> arguments, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(who);
        try
        {
            var line = AuditLine.Format(clock.GetUtcNow().UtcDateTime, await HostNameAsync(cancellationToken), AuditLine.TrackId(sessionRef),
                who.SubjectIdentifier, who.UserName, allowed, outcome, http: true, action, arguments);
            Write(line);
            forwarder.Forward(line);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // The action's own outcome stands; the agent's log says the audit could not record it.
            logger.LogWarning(ex, "Could not record {Action} in the audit log", action);
        }
    }

    /// <summary>
    /// <c>pool.audit_log_append</c> on the master: a slave's line, written as it came (its own host and time), once it
    /// is one well-formed audit line.
    /// </summary>
    /// <exception cref="XenApiException">The line is not an audit line (<c>INVALID_VALUE</c>).</exception>
    public void AppendForwarded(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        if (line.Length > MaxForwardedLine || !AuditLine.IsWellFormed(line))
        {
            throw new XenApiException(ErrorCodes.InvalidValue, "line", line.Length > 80 ? line[..80] + "..." : line);
        }

        Write(line);
    }

    private void Write(string line)
    {
        logger.LogInformation(Audited, "{Line}", line);
        if (!_lines.Writer.TryWrite(line))
        {
            Interlocked.Increment(ref _dropped);
        }
    }

    /// <summary>The call's arguments as the audit shows them: each object with its name and uuid, and the values xapi keeps.</summary>
    public async Task<IReadOnlyList<AuditArgument>> DescribeAsync(ApiMethod method, IReadOnlyList<object?> raw, CancellationToken cancellationToken)
    {
        var described = new List<AuditArgument>();
        for (var i = 0; i < method.Parameters.Count && i < raw.Count; i++)
        {
            var parameter = method.Parameters[i];
            if (parameter.Type is FieldType.RefTo target && raw[i] is string reference && OpaqueRef.IsWellFormed(reference))
            {
                var found = XenClasses.Find(target.ClassName) is { } cls ? await LookUpAsync(cls.Name, reference, cancellationToken) : null;
                var name = found is { Schema.HasNameLabel: true } ? found["name_label"] as string ?? "" : "";
                described.Add(new AuditArgument(parameter.Name, name, found?.Uuid ?? "", reference));
            }
            else if (AuditLine.Keeps(method.Name, parameter.Name) && raw[i] is string or bool or long or double)
            {
                described.Add(new AuditArgument(parameter.Name, Convert.ToString(raw[i], System.Globalization.CultureInfo.InvariantCulture) ?? "", "", ""));
            }
        }

        return described;
    }

    /// <summary>The object a call names, for its name and uuid; none when the pool database cannot say (the call goes on regardless).</summary>
    private async Task<XenObject?> LookUpAsync(string cls, string reference, CancellationToken cancellationToken)
    {
        try
        {
            return await database.TryGetAsync(cls, reference, cancellationToken);
        }
        catch (Exception ex) when (database.IsUnavailable(ex))
        {
            return null;
        }
    }

    /// <summary>Writes the lines at or after <paramref name="since"/> (any form xapi takes; empty: all), oldest first.</summary>
    public async Task WriteSinceAsync(string since, Stream output, CancellationToken cancellationToken)
    {
        if (Path is not { } current)
        {
            return;
        }

        var normalized = AuditLine.NormalizeSince(since);
        await _file.WaitAsync(cancellationToken);
        try
        {
            var files = Enumerable.Range(1, options.Value.Files).Reverse().Select(n => $"{current}.{n}").Append(current).Where(File.Exists).ToList();
            await using var writer = new StreamWriter(output, new UTF8Encoding(false), leaveOpen: true);
            foreach (var file in files)
            {
                foreach (var line in await File.ReadAllLinesAsync(file, cancellationToken))
                {
                    if (AuditLine.IsSince(line, normalized))
                    {
                        await writer.WriteAsync(line + "\n");
                    }
                }
            }
        }
        finally
        {
            _file.Release();
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var batch = new List<string>();
        while (await _lines.Reader.WaitToReadAsync(stoppingToken))
        {
            while (batch.Count < 1000 && _lines.Reader.TryRead(out var line))
            {
                batch.Add(line);
            }

            try
            {
                await AppendAsync(batch, stoppingToken);
            }
            catch (IOException ex)
            {
                logger.LogWarning(ex, "Could not write {Count} audit lines to {Path}", batch.Count, Path);
            }

            batch.Clear();
            if (Interlocked.Exchange(ref _dropped, 0) is > 0 and var dropped)
            {
                logger.LogWarning(Dropped, "{Count} audit lines were not written to {Path}: calls came faster than the disk took them", dropped, Path);
            }
        }
    }

    private async Task AppendAsync(List<string> batch, CancellationToken cancellationToken)
    {
        if (Path is not { } current)
        {
            return;
        }

        await _file.WaitAsync(cancellationToken);
        try
        {
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(current)!);
            if (File.Exists(current) && new FileInfo(current).Length >= options.Value.MaxFileBytes)
            {
                Rotate(current, options.Value.Files);
            }

            await File.AppendAllLinesAsync(current, batch, cancellationToken);
        }
        finally
        {
            _file.Release();
        }
    }

    /// <summary>audit.log.(n-1) becomes audit.log.n, ..., audit.log becomes audit.log.1; the oldest goes.</summary>
    private static void Rotate(string current, int files)
    {
        File.Delete($"{current}.{files}");
        for (var n = files - 1; n >= 1; n--)
        {
            if (File.Exists($"{current}.{n}"))
            {
                File.Move($"{current}.{n}", $"{current}.{n + 1}");
            }
        }

        File.Move(current, $"{current}.1");
    }

    private async Task<string> HostNameAsync(CancellationToken cancellationToken)
    {
        if (_hostName is { } known)
        {
            return known;
        }

        var host = OpaqueRef.IsWellFormed(api.Value.HostRef) ? await LookUpAsync(XenClasses.Host, api.Value.HostRef, cancellationToken) : null;
        return host is null ? Environment.MachineName : _hostName = host.Get(XenApi.Host.NameLabel);
    }

    public override void Dispose()
    {
        _file.Dispose();
        base.Dispose();
    }
}
