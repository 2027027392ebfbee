using Corral.Api.Sessions;
using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Corral.Api.Https;

/// <summary>
/// Follows this host's <c>https_only</c> in the pool database (set by <c>host.set_https_only</c> or
/// <c>pool.set_https_only</c> on any host) and applies it to the HTTP port. With the database out of reach the last
/// value read stays in force.
/// </summary>
public sealed class HttpsOnlyWatch(IPoolDatabase database, HttpsOnlyGate gate, IOptions<ApiOptions> options, ILogger<HttpsOnlyWatch> logger)
    : BackgroundService
{
    private static readonly TimeSpan Period = TimeSpan.FromSeconds(2);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Period);
        do
        {
            try
            {
                if (await database.TryGetAsync(XenClasses.Host, options.Value.HostRef, stoppingToken) is { } host)
                {
                    gate.Apply(host.Get(XenApi.Host.HttpsOnly));
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                logger.LogDebug(ex, "Could not read this host's https_only; the last value read stays");
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }
}
