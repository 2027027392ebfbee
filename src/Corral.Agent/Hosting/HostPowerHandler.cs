using Corral.Agent.HighAvailability;
using Corral.Agent.Membership;
using Corral.Agent.Operations;
using Corral.Agent.Vms;
using Corral.Api.Migration;
using Corral.Api.Operations;
using Corral.Api.Tasks;
using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.Extensions.Options;

namespace Corral.Agent.Hosting;

/// <summary>
/// <c>host.shutdown</c>, <c>host.reboot</c> and <c>host.restart_agent</c> on the host concerned, as persisted operations.
/// Shutdown and reboot do what xapi's power-off does before the machine goes down: check the host may go (HA's
/// statefile reachable, the pool database keeping its quorum without this host's member), move the VMs that can move
/// (live migrations), shut down the rest cleanly (hard if they do not stop), then end the agent and stop the host's etcd
/// member (<see cref="AgentLifecycle"/>); a reboot starts both again. An agent restart leaves VMs and member alone.
/// </summary>
/// <remarks>
/// With HA on this is safe: the VMs are gone from the host before its lease is, so the master has nothing to recover
/// and fences nothing; a VM stopped here was stopped on purpose, so HA does not restart it elsewhere (as xapi's shutdown
/// marks the host excluded from HA first). A host whose statefile is out of reach is refused, as xapi refuses it.
/// </remarks>
public sealed class HostPowerHandler(
    IPoolDatabase database,
    HostIdentity identity,
    VmSupervisor supervisor,
    StorageHeartbeat heartbeat,
    EvacuationPlanner planner,
    EvacuationHandler evacuation,
    HostOperationQueue operations,
    TaskService tasks,
    EtcdQuorum quorum,
    AgentLifecycle lifecycle,
    IOptions<AgentOptions> options,
    ILogger<HostPowerHandler> logger) : IHostOperationHandler
{
    /// <summary>The last step: the host is on its way down (a resumed operation has nothing left to do).</summary>
    public const string GoingDownStep = "going-down";

    /// <summary>How long the answer to the caller has before the agent stops.</summary>
    private static readonly TimeSpan AnswerGrace = TimeSpan.FromSeconds(1);

    public IReadOnlyCollection<string> Kinds { get; } = [HostOperationKinds.HostShutdown, HostOperationKinds.HostReboot, HostOperationKinds.HostRestartAgent];

    public async Task<string?> ExecuteAsync(HostOperation operation, OperationProgress progress, CancellationToken cancellationToken)
    {
        if (operation.Step == GoingDownStep)
        {
            // Resumed after the restart or power cycle it asked for: done.
            return null;
        }

        if (operation.Kind == HostOperationKinds.HostRestartAgent)
        {
            await progress.StepAsync(GoingDownStep, cancellationToken);
            logger.LogInformation("host.restart_agent: starting a new generation of the agent; VMs and the etcd member stay as they are");
            lifecycle.RequestAgentRestart(() => heartbeat.HaEnabled, () => supervisor.AllProcesses);
            return null;
        }

        var reboot = operation.Kind == HostOperationKinds.HostReboot;
        var name = reboot ? "reboot" : "shutdown";
        await CheckMayGoDownAsync(cancellationToken);
        await SetOperationAsync(operation.TaskRef, reboot ? HostAllowedOperations.Reboot : HostAllowedOperations.Shutdown, cancellationToken);
        try
        {
            await EnsureNoVmsAsync(cancellationToken);
        }
        catch
        {
            await SetOperationAsync(operation.TaskRef, null, CancellationToken.None);
            throw;
        }

        PowerCycle.Mark(options.Value.StateDirectory, name);
        await progress.StepAsync(GoingDownStep, cancellationToken);
        logger.LogWarning("host.{Operation}: no VM left here; stopping the agent and this host's etcd member{Again}", name, reboot ? ", then starting them again" : "");
        lifecycle.RequestPowerAction(reboot, AnswerGrace);
        return null;
    }

    /// <summary>HA_LOST_STATEFILE with HA on and the statefile out of reach; OPERATION_NOT_ALLOWED when the pool database would lose its quorum.</summary>
    private async Task CheckMayGoDownAsync(CancellationToken cancellationToken)
    {
        if (heartbeat.HaEnabled && !heartbeat.ReachesStatefile(DateTime.UtcNow))
        {
            throw new XenApiException(ErrorCodes.HaLostStatefile);
        }

        if (await quorum.LossIfStoppedAsync(cancellationToken) is { } reason)
        {
            throw new XenApiException(ErrorCodes.OperationNotAllowed, reason);
        }
    }

    /// <summary>
    /// As xapi before powering off: the VMs that cannot move are shut down, the others migrate away, and whatever still
    /// runs is shut down (cleanly, hard if the guest does not stop in time). Fails if a VM is still running here after
    /// that, and the host stays up.
    /// </summary>
    private async Task EnsureNoVmsAsync(CancellationToken cancellationToken)
    {
        var plan = await planner.PlanAsync(identity.Ref, cancellationToken);
        await StopAsync(plan.Blockers.Keys, cancellationToken);
        await evacuation.MoveWhatCanMoveAsync(identity.Ref, cancellationToken);
        await StopAsync((await RunningHereAsync(cancellationToken)).Select(v => v.Ref), cancellationToken);
        var left = await RunningHereAsync(cancellationToken);
        if (left.Count > 0)
        {
            throw new XenApiException(ErrorCodes.OperationNotAllowed,
                $"{left.Count} VM(s) still run on this host ({string.Join(", ", left.Select(v => v.Get(XenApi.VM.NameLabel)))}); it stays up");
        }
    }

    private async Task<List<XenObject>> RunningHereAsync(CancellationToken cancellationToken) =>
        (await database.GetAllAsync(XenClasses.VM, cancellationToken))
        .Where(v => v.Get(XenApi.VM.ResidentOn) == identity.Ref && v.Get(XenApi.VM.PowerState) is VmPowerState.Running or VmPowerState.Paused && !v.Get(XenApi.VM.IsControlDomain))
        .ToList();

    /// <summary>Shuts the VMs down at once, each as a VM operation of this host: clean (hard after the timeout), or hard when paused.</summary>
    private async Task StopAsync(IEnumerable<string> vmRefs, CancellationToken cancellationToken)
    {
        var stops = new List<Task>();
        foreach (var vmRef in vmRefs.Distinct())
        {
            if (await database.TryGetAsync(XenClasses.VM, vmRef, cancellationToken) is not { } vm || vm.Get(XenApi.VM.ResidentOn) != identity.Ref)
            {
                continue;
            }

            var paused = vm.Get(XenApi.VM.PowerState) == VmPowerState.Paused;
            var kind = paused ? HostOperationKinds.VmHardShutdown : HostOperationKinds.VmCleanShutdown;
            var arguments = paused ? new Dictionary<string, string>() : new Dictionary<string, string> { ["fallback_hard"] = "true" };
            logger.LogInformation("Shutting down VM {Vm} before the host goes down", vm.Get(XenApi.VM.NameLabel));
            stops.Add(RunVmOperationAsync(kind, vm.Ref, arguments, cancellationToken));
        }

        await Task.WhenAll(stops);
    }

    private async Task RunVmOperationAsync(string kind, string vmRef, Dictionary<string, string> arguments, CancellationToken cancellationToken)
    {
        var taskRef = await operations.SubmitAsync(kind, identity.Ref, vmRef, arguments, OpaqueRef.Null, null, cancellationToken);
        try
        {
            await tasks.WaitAsync(taskRef, cancellationToken);
        }
        catch (XenApiException ex)
        {
            // Whatever still runs afterwards is counted, and stops the host going down.
            logger.LogWarning("Shutting down VM {Vm} failed: {Error}", vmRef, ex.Message);
        }
        finally
        {
            if (await database.TryGetAsync(XenClasses.Task, taskRef, CancellationToken.None) is { } task)
            {
                var tx = new PoolTransaction();
                tx.Delete(task);
                try
                {
                    await database.CommitAsync(tx, CancellationToken.None);
                }
                catch (ConcurrentUpdateException)
                {
                    // Someone else removed or changed it meanwhile; nothing of ours to clean up.
                }
            }
        }
    }

    /// <summary>Marks (or clears) the shutdown or reboot in the host's <c>current_operations</c>, keyed by its task, as xapi does.</summary>
    private Task SetOperationAsync(string taskRef, HostAllowedOperations? operation, CancellationToken cancellationToken) =>
        database.UpdateAsync([(XenClasses.Host, identity.Ref)], (objs, tx) =>
        {
            var h = objs[0].Clone();
            var current = h.Get(XenApi.Host.CurrentOperations).ToDictionary();
            if (operation is not { } op)
            {
                current.Remove(taskRef);
            }
            else
            {
                current[taskRef] = op;
            }

            h.Set(XenApi.Host.CurrentOperations, current);
            tx.Update(h);
        }, cancellationToken);
}
