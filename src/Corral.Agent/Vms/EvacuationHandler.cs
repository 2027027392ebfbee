using Corral.Agent.Operations;
using Corral.Api.Migration;
using Corral.Api.Operations;
using Corral.Api.Tasks;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Agent.Vms;

/// <summary>
/// <c>host.evacuate</c> on the evacuated host: plans where each VM goes, live-migrates them a few at a time, and
/// plans again until no VM is left. Safe to resume after a restart: the plan is made from what still runs here, and
/// migrations already under way are followed, not started twice.
/// </summary>
public sealed class EvacuationHandler(
    IPoolDatabase database,
    EvacuationPlanner planner,
    MigrationStarter starter,
    TaskService tasks,
    ILogger<EvacuationHandler> logger) : IHostOperationHandler
{
    /// <summary>Migrations run at once: more would only share the same links and CPU.</summary>
    public const int Parallelism = 2;

    public IReadOnlyCollection<string> Kinds { get; } = [HostOperationKinds.HostEvacuate];

    public async Task<string?> ExecuteAsync(HostOperation operation, OperationProgress progress, CancellationToken cancellationToken)
    {
        var hostRef = operation.HostRef;
        var initial = (await planner.PlanAsync(hostRef, cancellationToken).ConfigureAwait(false)).Destinations.Count;
        for (var round = 0; round < 3; round++)
        {
            var plan = await planner.PlanAsync(hostRef, cancellationToken).ConfigureAwait(false);
            if (plan.Blockers.Count > 0)
            {
                var (_, error) = plan.Blockers.First();
                throw new XenApiException(error[0], [.. error.Skip(1)]);
            }

            if (plan.Destinations.Count == 0)
            {
                logger.LogInformation("Host evacuated: no VM left");
                return null;
            }

            using var slots = new SemaphoreSlim(Parallelism);
            var moves = plan.Destinations.Select(async kv =>
            {
                await slots.WaitAsync(cancellationToken).ConfigureAwait(false);
                try
                {
                    await MoveAsync(kv.Key, kv.Value, cancellationToken).ConfigureAwait(false);
                    var left = (await planner.PlanAsync(hostRef, cancellationToken).ConfigureAwait(false)).Destinations.Count;
                    await tasks.SetProgressAsync(operation.TaskRef, initial == 0 ? 1 : 1 - ((double)left / initial), cancellationToken).ConfigureAwait(false);
                }
                finally
                {
                    slots.Release();
                }
            }).ToList();
            await Task.WhenAll(moves).ConfigureAwait(false);
        }

        var remaining = (await planner.PlanAsync(hostRef, cancellationToken).ConfigureAwait(false)).Destinations.Count;
        if (remaining > 0)
        {
            throw new XenApiException(ErrorCodes.OperationNotAllowed, $"{remaining} VM(s) could not be moved off the host");
        }

        return null;
    }

    private async Task MoveAsync(string vmRef, string destination, CancellationToken cancellationToken)
    {
        string? sendTask = null;
        try
        {
            if (await MigrationRecord.ReadAsync(database, vmRef, cancellationToken).ConfigureAwait(false) is { } running)
            {
                // Started before a restart of this agent: wait for it to end.
                while (await MigrationRecord.ReadAsync(database, vmRef, cancellationToken).ConfigureAwait(false) is { } still && still.Record.Id == running.Record.Id)
                {
                    await Task.Delay(200, cancellationToken).ConfigureAwait(false);
                }

                return;
            }

            sendTask = await starter.StartAsync(OpaqueRef.Null, vmRef, destination, new Dictionary<string, object?>(), null, cancellationToken).ConfigureAwait(false);
            await tasks.WaitAsync(sendTask, cancellationToken).ConfigureAwait(false);
        }
        catch (XenApiException ex)
        {
            // This VM stays for now; the next round plans it again, and the last says why it could not go.
            logger.LogWarning("Evacuation: VM {Vm} did not move: {Error}", vmRef, ex.Message);
        }
        finally
        {
            if (sendTask is not null && await database.TryGetAsync(XenClasses.Task, sendTask, CancellationToken.None).ConfigureAwait(false) is { } task)
            {
                var tx = new PoolTransaction();
                tx.Delete(task);
                try
                {
                    await database.CommitAsync(tx, CancellationToken.None).ConfigureAwait(false);
                }
                catch (ConcurrentUpdateException)
                {
                }
            }
        }
    }
}
