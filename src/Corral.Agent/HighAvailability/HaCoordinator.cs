using Corral.Agent.Hosting;
using Corral.Api.Events;
using Corral.Api.Pool;
using Corral.Model;
using Corral.PoolDatabase;
using Corral.HighAvailability;
using Microsoft.Extensions.Options;

namespace Corral.Agent.HighAvailability;

/// <summary>
/// Runs HA's recovery (<see cref="RecoveryEngine"/>) while this host is the master: every 250 ms while a recovery is
/// under way, otherwise when something that could start one changes (<see cref="RecoveryEngine.Quiet"/>), over the pool
/// database, the heartbeat SR, the fence agents and <c>VM.start</c> (<see cref="PoolRecoveryWorld"/>). The HA
/// simulation drives the same engine over its simulated pool.
/// </summary>
public sealed class HaCoordinator(
    HostIdentity identity,
    MasterState masterState,
    PoolRecoveryWorld world,
    EventHub events,
    TimeProvider clock,
    IOptions<HaOptions> options,
    ILogger<HaCoordinator> logger) : BackgroundService
{
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(250);

    // With no recovery under way, a round waits for what could give it one: the pool (HA enabled or disabled), a host,
    // a host's liveness (host_metrics: a lease that expired) or a VM changing, or this long at most (HA off; on).
    private static readonly TimeSpan IdleRecheck = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan QuietRecheck = TimeSpan.FromSeconds(1);
    private static bool Watched(PoolChange change) =>
        change.Object.Class is XenClasses.Pool or XenClasses.Host or XenClasses.VM
        || (change.Object.Class == XenClasses.HostMetrics && change.DerivedField == DerivedFields.Live);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var engine = new RecoveryEngine(options.Value.Timings, clock, logger);
        var backToBack = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            var progressed = false;
            var seen = events.Revision;
            var master = masterState.MasterRef == identity.Ref;
            TimeSpan? quietFor = null;
            try
            {
                if (master)
                {
                    progressed = await engine.RunOnceAsync(world, stoppingToken);
                    quietFor = engine.Idle ? IdleRecheck : engine.Quiet ? QuietRecheck : null;
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Corral.PoolDatabase.ConcurrentUpdateException ex)
            {
                // A failed host handed its VMs to HA, or another write raced this round's: the next round reads again.
                logger.LogInformation("HA round lost a race ({Reason}); reading again", ex.Message);
            }
            catch (Exception ex)
            {
                logger.LogWarning(ex, "HA round failed; retrying");
            }

            if (progressed && ++backToBack < RecoveryEngine.BackToBackRounds)
            {
                continue;
            }

            backToBack = 0;
            var next = quietFor is { } backstop
                ? events.WaitForChangeAsync(seen, Watched, backstop, clock, stoppingToken)
                : Task.Delay(Tick, clock, stoppingToken);
            await next.ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }
}
