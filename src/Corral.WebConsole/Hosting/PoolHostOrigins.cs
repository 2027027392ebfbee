using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Corral.WebConsole.Hosting;

/// <summary>
/// The origins whose pages may call this host from a browser: a console page served by any host of the pool follows the
/// master to whichever host that is, so each host lets the pool's own hosts' pages in (CORS), and nobody else's.
/// </summary>
public sealed class PoolHostOrigins(IPoolDatabase database, IOptions<WebConsoleOptions> options, ILogger<PoolHostOrigins> logger)
    : BackgroundService
{
    private static readonly TimeSpan Refresh = TimeSpan.FromSeconds(5);
    private volatile HashSet<string> _hostAddresses = OwnAddresses(options.Value);

    /// <summary>True for <c>http(s)://&lt;a pool host's address&gt;[:port]</c> and the configured extra origins.</summary>
    public bool IsAllowed(string origin)
    {
        if (!Uri.TryCreate(origin, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
        {
            return false;
        }

        return _hostAddresses.Contains(uri.IdnHost)
            || options.Value.AllowedOrigins.Any(o => string.Equals(o.TrimEnd('/'), origin.TrimEnd('/'), StringComparison.OrdinalIgnoreCase));
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var addresses = OwnAddresses(options.Value);
                foreach (var host in await database.GetAllAsync(XenClasses.Host, stoppingToken))
                {
                    if (host.Get(XenApi.Host.Address) is { Length: > 0 } address)
                    {
                        addresses.Add(address.Trim('[', ']'));
                    }
                }

                _hostAddresses = addresses;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // The pool database may be out of reach (a failover): the last known hosts stay allowed.
                logger.LogDebug(ex, "Could not read the pool's hosts for the console's allowed origins");
            }

            await Task.Delay(Refresh, stoppingToken);
        }
    }

    private static HashSet<string> OwnAddresses(WebConsoleOptions options)
    {
        var set = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        if (!string.IsNullOrEmpty(options.OwnAddress))
        {
            set.Add(options.OwnAddress.Trim('[', ']'));
        }

        return set;
    }
}
