using Corral.Agent.Hosting;
using Corral.Api.Pool;
using Corral.HighAvailability;
using Microsoft.Extensions.Options;

namespace Corral.Agent.HighAvailability;

/// <summary>
/// Runs HA's recovery (<see cref="RecoveryEngine"/>) every 250 ms while this host is the master, over the pool
/// database, the heartbeat SR, the fence agents and <c>VM.start</c> (<see cref="PoolRecoveryWorld"/>). The HA
/// simulation drives the same engine over its simulated pool.
/// </summary>
public sealed class HaCoordinator(
    HostIdentity identity,
    MasterState master,
    PoolRecoveryWorld world,
    TimeProvider clock,
    IOptions<HaOptions> options,
    ILogger<HaCoordinator> logger) : BackgroundService
{
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(250);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var engine = new RecoveryEngine(options.Value.Timings, clock, logger);
        var backToBack = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            var progressed = false;
            try
            {
                if (master.MasterRef == identity.Ref)
                {
                    progressed = await engine.RunOnceAsync(world, stoppingToken);
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
            await Task.Delay(Tick, clock, stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }
}
