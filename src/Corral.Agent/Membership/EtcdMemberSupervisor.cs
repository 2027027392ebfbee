using Corral.PoolDatabase.Etcd;

namespace Corral.Agent.Membership;

/// <summary>
/// Keeps this host's side of the pool database going while the agent runs. Its etcd member, a process of its own,
/// is restarted from its data directory if it dies (etcd recovers a member from its write-ahead log and snapshot, under
/// the same member id, as after a reboot; with <c>--pre-vote</c> it rejoins without disturbing the leader). And the
/// connection's endpoints follow the cluster's member list, so that while the local member is down the agent talks to
/// the others instead of losing its lease, and comes back to its own member once it serves again.
/// </summary>
public sealed class EtcdMemberSupervisor(MembershipTransitionRunner runner, EtcdPoolDatabase database, ILogger<EtcdMemberSupervisor> logger)
    : BackgroundService
{
    private static readonly TimeSpan Check = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan RefreshEndpoints = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(30);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var nextRefresh = DateTime.MinValue;
        var backoff = Check;
        var nextRestart = DateTime.MinValue;
        while (!stoppingToken.IsCancellationRequested)
        {
            if (DateTime.UtcNow >= nextRestart)
            {
                try
                {
                    if (await runner.RestartMemberIfDeadAsync(stoppingToken))
                    {
                        backoff = Check;
                        // Back on this host's own member: the agent no longer depends on the host it moved to meanwhile.
                        database.Endpoints.ReturnToPreferred();
                    }
                }
                catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
                {
                    // A member that cannot start (its data damaged, or the cluster removed it) is not restarted in a loop.
                    logger.LogError(ex, "Could not restart this host's etcd member; trying again in {Seconds} s", backoff.TotalSeconds);
                    nextRestart = DateTime.UtcNow + backoff;
                    backoff = TimeSpan.FromTicks(Math.Min(MaxBackoff.Ticks, backoff.Ticks * 2));
                }
            }

            if (DateTime.UtcNow >= nextRefresh)
            {
                nextRefresh = DateTime.UtcNow + RefreshEndpoints;
                try
                {
                    await database.RefreshEndpointsAsync(stoppingToken);
                }
                catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
                {
                    logger.LogDebug(ex, "Could not read the etcd member list; keeping the endpoints");
                }
            }

            await Task.Delay(Check, stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }
}
