using System.Collections.Concurrent;
using Corral.Agent.Operations;
using Corral.Api.Migration;
using Corral.Api.Operations;
using Corral.Api.Tasks;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Agent.Vms;

/// <summary>
/// <c>host.evacuate</c> on the evacuated host: plans where each VM goes, live-migrates them a few at a time, and
/// plans again until no VM is left, noting each VM moved in the host's other_config. Safe to resume after a restart:
/// the plan is made from what still runs here, and migrations already under way are followed, not started twice.
/// <c>host.restore_evacuated_vms</c> brings the noted VMs back the same way, skipping those already here, halted or
/// gone, and forgets the ones that came back.
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

    /// <summary>How many times leaving maintenance mode tries to bring back a VM whose migration failed.</summary>
    private const int RestoreRounds = 3;

    private const string BatchSizeArgument = Corral.Api.Methods.EvacuationMethods.BatchSizeArgument;

    public IReadOnlyCollection<string> Kinds { get; } = [HostOperationKinds.HostEvacuate, HostOperationKinds.HostRestoreEvacuatedVms];

    public Task<string?> ExecuteAsync(HostOperation operation, OperationProgress progress, CancellationToken cancellationToken) =>
        operation.Kind == HostOperationKinds.HostEvacuate ? EvacuateAsync(operation, cancellationToken) : RestoreAsync(operation, cancellationToken);

    private async Task<string?> RestoreAsync(HostOperation operation, CancellationToken cancellationToken)
    {
        var hostRef = operation.HostRef;
        var host = await database.GetAsync(XenClasses.Host, hostRef, cancellationToken);
        var noted = EvacuatedVms.Of(host);
        var back = await RunningElsewhereAsync(noted, hostRef, cancellationToken);

        // In rounds, as an evacuation: a migration that failed on a passing cause (a busy host) is tried again.
        var failed = new Dictionary<string, string>(StringComparer.Ordinal);
        var done = 0;
        var pending = back;
        for (var round = 0; round < RestoreRounds && pending.Count > 0; round++)
        {
            pending = round == 0 ? pending : await RunningElsewhereAsync(pending, hostRef, cancellationToken);
            failed.Clear();
            using var slots = new SemaphoreSlim(Parallelism);
            await Task.WhenAll(pending.Select(async vmRef =>
            {
                await slots.WaitAsync(cancellationToken);
                try
                {
                    var (now, error) = await MoveAsync(vmRef, hostRef, null, cancellationToken);
                    if (now != hostRef)
                    {
                        lock (failed)
                        {
                            failed[vmRef] = error ?? $"it runs on {now}";
                        }

                        return;
                    }

                    await tasks.SetProgressAsync(operation.TaskRef, (double)Interlocked.Increment(ref done) / back.Count, cancellationToken);
                }
                finally
                {
                    slots.Release();
                }
            }));
            pending = [.. failed.Keys];
        }

        // What did not come back stays noted, so that trying again later picks it up.
        await EvacuatedVms.ChangeAsync(database, hostRef, _ => [.. failed.Keys], cancellationToken);
        if (failed.Count > 0)
        {
            var (vmRef, why) = failed.First();
            throw new XenApiException(ErrorCodes.OperationNotAllowed,
                $"{failed.Count} of {back.Count} VM(s) could not be moved back ({vmRef}: {why}); run it again later");
        }

        logger.LogInformation("Restored {Count} evacuated VM(s) to this host", back.Count);
        return null;
    }

    /// <summary>Of the VMs, those still running elsewhere: one halted, destroyed or already here is simply forgotten.</summary>
    private async Task<List<string>> RunningElsewhereAsync(IEnumerable<string> vmRefs, string hostRef, CancellationToken cancellationToken)
    {
        var result = new List<string>();
        foreach (var vmRef in vmRefs)
        {
            if (await database.TryGetAsync(XenClasses.VM, vmRef, cancellationToken) is { } vm
                && vm.Get(XenApi.VM.PowerState) == VmPowerState.Running && vm.Get(XenApi.VM.ResidentOn) != hostRef)
            {
                result.Add(vmRef);
            }
        }

        return result;
    }

    private async Task<string?> EvacuateAsync(HostOperation operation, CancellationToken cancellationToken)
    {
        var hostRef = operation.HostRef;
        var initial = (await planner.PlanAsync(hostRef, cancellationToken)).Destinations.Count;
        // The evacuation's progress follows its migrations' as they go, not only as each ends.
        var progress = new EvacuationProgress();
        using var following = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var follower = FollowProgressAsync(operation.TaskRef, initial, progress, following.Token);
        try
        {
            var batch = int.TryParse(operation.Argument(BatchSizeArgument), out var n) && n > 0 ? n : Parallelism;
            return await EvacuateRoundsAsync(hostRef, batch, progress, cancellationToken);
        }
        finally
        {
            await following.CancelAsync();
            try
            {
                await follower;
            }
            catch (OperationCanceledException)
            {
                // Stopped with the evacuation.
            }
        }
    }

    /// <summary>
    /// Moves off the host every VM that can go (live migrations, as an evacuation), and leaves the rest: what
    /// <c>host.shutdown</c> and <c>host.reboot</c> do before stopping what remains, as xapi's power-off does.
    /// </summary>
    public async Task MoveWhatCanMoveAsync(string hostRef, CancellationToken cancellationToken)
    {
        try
        {
            await EvacuateRoundsAsync(hostRef, Parallelism, new EvacuationProgress(), cancellationToken);
        }
        catch (XenApiException ex)
        {
            logger.LogInformation("Not every VM could leave the host ({Error}); those left will be shut down", ex.Message);
        }
    }

    private async Task FollowProgressAsync(string taskRef, int initial, EvacuationProgress progress, CancellationToken cancellationToken)
    {
        var reported = -1.0;
        while (!cancellationToken.IsCancellationRequested && initial > 0)
        {
            await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken);
            var moving = 0.0;
            foreach (var sendTask in progress.InFlight.Values)
            {
                moving += (await database.TryGetAsync(XenClasses.Task, sendTask, cancellationToken))?.Get(XenApi.Task.Progress) ?? 0;
            }

            var fraction = Math.Min(0.99, (progress.Moved + moving) / initial);
            if (fraction > reported + 0.01)
            {
                await tasks.SetProgressAsync(taskRef, fraction, cancellationToken);
                reported = fraction;
            }
        }
    }

    private async Task<string?> EvacuateRoundsAsync(string hostRef, int batch, EvacuationProgress progress, CancellationToken cancellationToken)
    {
        for (var round = 0; round < 3; round++)
        {
            var plan = await planner.PlanAsync(hostRef, cancellationToken);
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

            using var slots = new SemaphoreSlim(batch);
            var moves = plan.Destinations.Select(async kv =>
            {
                await slots.WaitAsync(cancellationToken);
                try
                {
                    if ((await MoveAsync(kv.Key, kv.Value, progress, cancellationToken)).ResidentOn is { } now && now != hostRef && !OpaqueRef.IsNull(now))
                    {
                        await EvacuatedVms.ChangeAsync(database, hostRef, list => [.. list, kv.Key], cancellationToken);
                        progress.MovedOne();
                    }
                }
                finally
                {
                    slots.Release();
                }
            }).ToList();
            await Task.WhenAll(moves);
        }

        var remaining = (await planner.PlanAsync(hostRef, cancellationToken)).Destinations.Count;
        if (remaining > 0)
        {
            throw new XenApiException(ErrorCodes.OperationNotAllowed, $"{remaining} VM(s) could not be moved off the host");
        }

        return null;
    }

    /// <summary>
    /// Live-migrates the VM (or follows its migration already under way); returns where it runs afterwards, and why
    /// the migration failed if it did.
    /// </summary>
    private async Task<(string? ResidentOn, string? Error)> MoveAsync(string vmRef, string destination, EvacuationProgress? progress, CancellationToken cancellationToken)
    {
        string? sendTask = null;
        try
        {
            if (await MigrationRecord.ReadAsync(database, vmRef, cancellationToken) is { } running)
            {
                // Started before a restart of this agent: wait for it to end.
                while (await MigrationRecord.ReadAsync(database, vmRef, cancellationToken) is { } still && still.Record.Id == running.Record.Id)
                {
                    await Task.Delay(200, cancellationToken);
                }
            }
            else
            {
                sendTask = await starter.StartAsync(OpaqueRef.Null, vmRef, destination, new Dictionary<string, object?>(), null, cancellationToken);
                progress?.InFlight.TryAdd(vmRef, sendTask);
                await tasks.WaitAsync(sendTask, cancellationToken);
            }

            return ((await database.TryGetAsync(XenClasses.VM, vmRef, cancellationToken))?.Get(XenApi.VM.ResidentOn), null);
        }
        catch (XenApiException ex)
        {
            // This VM stays for now; the next round plans it again, and the last says why it could not go.
            logger.LogWarning("VM {Vm} did not move to {Host}: {Error}", vmRef, destination, ex.Message);
            return (null, ex.Message);
        }
        finally
        {
            progress?.InFlight.TryRemove(vmRef, out _);
            if (sendTask is not null && await database.TryGetAsync(XenClasses.Task, sendTask, CancellationToken.None) is { } task)
            {
                var tx = new PoolTransaction();
                tx.Delete(task);
                try
                {
                    await database.CommitAsync(tx, CancellationToken.None);
                }
                catch (ConcurrentUpdateException)
                {
                }
            }
        }
    }

    /// <summary>How far an evacuation is: the VMs moved, and the migration task of each VM on its way.</summary>
    private sealed class EvacuationProgress
    {
        private int _moved;

        public ConcurrentDictionary<string, string> InFlight { get; } = new(StringComparer.Ordinal);

        public int Moved => Volatile.Read(ref _moved);

        public void MovedOne() => Interlocked.Increment(ref _moved);
    }
}
