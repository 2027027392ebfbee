using Corral.Api.AllowedOperations;
using Corral.Api.Dispatch;
using Corral.Api.HighAvailability;
using Corral.Api.Operations;
using Corral.Api.Pool;
using Corral.HighAvailability;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Api.Methods;

/// <summary>
/// Starts a halted VM on a host (given, or chosen by <see cref="Placement"/>): <c>VM.start</c> and <c>VM.start_on</c>,
/// and HA's restarts, which skip admission control since the failover plan exists for exactly them. Returns the host.
/// </summary>
public sealed class VmStarter(IPoolDatabase database, Placement placement, HostOperationQueue operations, FailoverPlanning planning, OperationMarks marks)
{
    public async Task<string> StartAsync(CallContext context, string vmRef, string? hostRef, bool paused, CancellationToken cancellationToken, bool haRestart = false)
    {
        var vm = await database.GetArgumentAsync(XenClasses.VM, vmRef, cancellationToken);
        var op = hostRef is null ? VmOperations.Start : VmOperations.StartOn;
        await marks.AssertVmAsync(vm, op, cancellationToken);
        XenObject host;
        if (hostRef is null)
        {
            host = await placement.ChooseAsync(vm, cancellationToken, anyBuild: haRestart);
        }
        else
        {
            host = await database.GetArgumentAsync(XenClasses.Host, hostRef, cancellationToken);
            if (!haRestart && RollingUpgrade.MayStartVms([host], await database.GetAllAsync(XenClasses.Host, cancellationToken)).Count == 0)
            {
                // xapi's start_on during a rolling upgrade: only on a host that runs the newest build.
                throw new XenApiException(ErrorCodes.NotSupportedDuringUpgrade);
            }

            await placement.CheckHostAsync(vm, host, cancellationToken);
        }

        if (!haRestart && vm.Get(XenApi.VM.HaRestartPriority) == RestartPriority.Restart)
        {
            // With HA on, a protected VM that starts must still leave a restart plan for the failures to tolerate.
            await planning.CheckAdmissionAsync(vms => [.. vms, new PlanVm(vm.Ref, host.Ref, Placement.MemoryNeeded(vm), true)],
                cancellationToken);
        }

        // Reserving the host and recording the start in one guarded write keeps two starts from racing: the second
        // finds the first's entry in current_operations. The agent removes it (its task is the reservation) when the
        // VM runs or the start fails.
        await using var mark = await marks.MarkVmAsync(context, vmRef, op, cancellationToken,
            alsoChange: v =>
            {
                v.Set(XenApi.VM.ScheduledToBeResidentOn, host.Ref);
                ResolveSecureBoot(v);
            });
        await operations.RunAsync(HostOperationKinds.VmStart, host.Ref, vmRef,
            new Dictionary<string, string> { ["paused"] = paused ? "true" : "false", ["reservation"] = mark.TaskRef }, context, cancellationToken, mark);
        return host.Ref;
    }

    /// <summary>
    /// xapi's VM.start: <c>platform:secureboot=auto</c> becomes <c>true</c> when the pool has Secure Boot certificates,
    /// and is recorded so. Corral's hosts always have them (Microsoft's keys, enrolled in Debian's OVMF variable store,
    /// which the ovmf package every host has ships).
    /// </summary>
    public static void ResolveSecureBoot(XenObject vm)
    {
        var platform = vm.Get(XenApi.VM.Platform);
        if (platform.GetValueOrDefault("secureboot") == "auto")
        {
            vm.Set(XenApi.VM.Platform, new Dictionary<string, string>(platform, StringComparer.Ordinal) { ["secureboot"] = "true" });
        }
    }
}
