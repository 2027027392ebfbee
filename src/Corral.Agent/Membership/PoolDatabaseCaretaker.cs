using Corral.Agent.Hosting;
using Corral.PoolDatabase;
using Corral.PoolDatabase.Etcd.Maintenance;
using Microsoft.Extensions.Options;

namespace Corral.Agent.Membership;

/// <summary>Runs <see cref="PoolDatabaseCare"/> for this host's etcd member every <see cref="PoolDatabaseCareOptions.CheckEvery"/>.</summary>
public sealed class PoolDatabaseCaretaker(MembershipTransitionRunner runner, IPoolDatabase database, HostIdentity identity,
    IOptions<PoolDatabaseCareOptions> options, TimeProvider time, ILogger<PoolDatabaseCaretaker> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var member = runner.MemberOptions;
        var care = new PoolDatabaseCare(member.ClientUrl, member.QuotaBytes, identity.Uuid, database, options.Value, time, logger, runner.Tls);
        using var timer = new PeriodicTimer(options.Value.CheckEvery, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                await care.RunOnceAsync(stoppingToken);
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                // A member that is down or restarting is the supervisor's business; looked at again next time.
                logger.LogDebug(ex, "Could not look after this host's etcd member's space; trying again in {Seconds} s", options.Value.CheckEvery.TotalSeconds);
            }
        }
    }
}
