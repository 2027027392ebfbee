using System.Collections.Concurrent;
using System.Net;
using System.Threading.RateLimiting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Corral.Api.Http;

/// <summary>
/// What one client address may hold of a host (<c>Corral:Api:ClientLimits</c>): connections, XenAPI calls in flight, and
/// calls per second. Generous for any real client (XenCenter, Xen Orchestra, xe, the SDKs hold a few connections and a
/// long-polling <c>event.from</c> or two); what they stop is one address taking the whole host, whose HA and other
/// clients share its two cores.
/// </summary>
public sealed class ClientLimitOptions : IOptionsWithProblems
{
    /// <summary>Open connections per client address; one more is closed as it opens.</summary>
    public int ConnectionsPerAddress { get; set; } = 256;

    /// <summary>XenAPI calls being answered at once per client address (a long-polling event.from holds one).</summary>
    public int CallsInFlightPerAddress { get; set; } = 32;

    /// <summary>XenAPI calls per second per client address, sustained; a burst may take twice that at once.</summary>
    public int CallsPerSecondPerAddress { get; set; } = 200;

    /// <summary>Calls of one address waiting for their turn; past that, HTTP 503 with <c>Retry-After</c>.</summary>
    public int QueuedCallsPerAddress { get; set; } = 1000;

    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (ConnectionsPerAddress < 8)
        {
            problems.Add("Corral:Api:ClientLimits:ConnectionsPerAddress must be at least 8: a browser alone opens 6");
        }

        if (CallsInFlightPerAddress < 4)
        {
            problems.Add("Corral:Api:ClientLimits:CallsInFlightPerAddress must be at least 4: a client's event loops hold calls open");
        }

        if (CallsPerSecondPerAddress < 10 || QueuedCallsPerAddress < 0)
        {
            problems.Add("Corral:Api:ClientLimits:CallsPerSecondPerAddress must be at least 10 and QueuedCallsPerAddress not negative");
        }

        return problems;
    }
}

/// <summary>
/// Holds each client address to its calls in flight and per second (<see cref="ClientLimitOptions"/>), with .NET's
/// partitioned rate limiters: a call past the rate waits its turn, queued in order; past the queue it is refused. One
/// address's flood is slowed and then refused, while other addresses' calls go through untouched.
/// </summary>
public sealed class ClientCallLimiter : IDisposable
{
    private static readonly EventId Refused = new(1320, "ClientCallsRefused");
    private readonly PartitionedRateLimiter<string> _limiter;
    private readonly ILogger<ClientCallLimiter> _logger;
    private readonly ConcurrentDictionary<string, long> _refusals = new(StringComparer.Ordinal);

    public ClientCallLimiter(IOptions<ClientLimitOptions> options, ILogger<ClientCallLimiter> logger)
    {
        var o = options.Value;
        _logger = logger;
        var inFlight = PartitionedRateLimiter.Create<string, string>(address => RateLimitPartition.GetConcurrencyLimiter(address,
            _ => new ConcurrencyLimiterOptions { PermitLimit = o.CallsInFlightPerAddress, QueueLimit = o.QueuedCallsPerAddress, QueueProcessingOrder = QueueProcessingOrder.OldestFirst }));
        var rate = PartitionedRateLimiter.Create<string, string>(address => RateLimitPartition.GetTokenBucketLimiter(address,
            _ => new TokenBucketRateLimiterOptions
            {
                TokenLimit = o.CallsPerSecondPerAddress * 2,
                TokensPerPeriod = Math.Max(1, o.CallsPerSecondPerAddress / 10),
                ReplenishmentPeriod = TimeSpan.FromMilliseconds(100),
                QueueLimit = o.QueuedCallsPerAddress,
                QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
                AutoReplenishment = true,
            }));
        _limiter = PartitionedRateLimiter.CreateChained(rate, inFlight);
    }

    /// <summary>
    /// Waits for the call's turn; null when the address has too many waiting already (the caller answers 503). The lease,
    /// disposed when the call has been answered, frees its place.
    /// </summary>
    public async Task<RateLimitLease?> AcquireAsync(IPAddress? address, CancellationToken cancellationToken)
    {
        var key = address?.ToString() ?? "";
        var lease = await _limiter.AcquireAsync(key, 1, cancellationToken);
        if (lease.IsAcquired)
        {
            return lease;
        }

        lease.Dispose();
        var count = _refusals.AddOrUpdate(key, 1, (_, n) => n + 1);
        if (count == 1 || count % 1000 == 0)
        {
            _logger.LogWarning(Refused, "Client {Address} has too many XenAPI calls waiting: refused with 503 ({Count} so far)", key, count);
        }

        return null;
    }

    public void Dispose() => _limiter.Dispose();
}

/// <summary>Counts each client address's open connections, for <see cref="ClientLimitOptions.ConnectionsPerAddress"/>.</summary>
public sealed class ClientConnectionCounter(IOptions<ClientLimitOptions> options, ILogger<ClientConnectionCounter> logger)
{
    private static readonly EventId Refused = new(1321, "ClientConnectionRefused");
    private readonly ConcurrentDictionary<string, int> _open = new(StringComparer.Ordinal);

    /// <summary>Counts a connection in; false (not counted) when its address already holds its limit.</summary>
    public bool TryEnter(IPAddress? address)
    {
        var key = address?.ToString() ?? "";
        var limit = options.Value.ConnectionsPerAddress;
        while (true)
        {
            var current = _open.GetOrAdd(key, 0);
            if (current >= limit)
            {
                logger.LogWarning(Refused, "Client {Address} already holds {Limit} connections: one more closed", key, limit);
                return false;
            }

            if (_open.TryUpdate(key, current + 1, current))
            {
                return true;
            }
        }
    }

    public void Exit(IPAddress? address)
    {
        var key = address?.ToString() ?? "";
        var left = _open.AddOrUpdate(key, 0, (_, n) => Math.Max(0, n - 1));
        if (left == 0)
        {
            // An address that holds nothing is not kept.
            _open.TryRemove(new KeyValuePair<string, int>(key, 0));
        }
    }
}
