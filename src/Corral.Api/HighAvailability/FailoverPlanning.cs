using Corral.Api.Methods;
using Corral.HighAvailability;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Api.HighAvailability;

/// <summary>The pool as failover planning sees it, read from the pool database.</summary>
public sealed record FailoverSnapshot(XenObject Pool, IReadOnlyList<PlanHost> Hosts, IReadOnlyList<PlanVm> Vms);

/// <summary>
/// Failover planning against the pool database: what <c>pool.ha_compute_*</c> answer, and admission control — with HA
/// on, an operation that would leave the pool unable to restart its protected VMs after
/// <c>ha_host_failures_to_tolerate</c> host failures is refused with HA_OPERATION_WOULD_BREAK_FAILOVER_PLAN, unless
/// <c>ha_allow_overcommit</c> is set.
/// </summary>
public sealed class FailoverPlanning(IPoolDatabase database, Placement placement)
{
    /// <summary>
    /// Live hosts (a disabled one offers no room: nothing is restarted there) and running VMs, each protected by its own
    /// restart priority unless <paramref name="priorities"/> says otherwise.
    /// </summary>
    public async Task<FailoverSnapshot> SnapshotAsync(CancellationToken cancellationToken, IReadOnlyDictionary<string, string>? priorities = null)
    {
        var pool = (await database.GetAllAsync(XenClasses.Pool, cancellationToken)).Single();
        var hosts = new List<PlanHost>();
        foreach (var host in await database.GetAllAsync(XenClasses.Host, cancellationToken))
        {
            if (await placement.IsLiveAsync(host, cancellationToken))
            {
                hosts.Add(new PlanHost(host.Ref, host.Get(XenApi.Host.Enabled) ? await placement.CapacityAsync(host, cancellationToken) : 0));
            }
        }

        var live = hosts.Select(h => h.Ref).ToHashSet(StringComparer.Ordinal);
        var vms = new List<PlanVm>();
        foreach (var vm in await database.GetAllAsync(XenClasses.VM, cancellationToken))
        {
            if (vm.Get(XenApi.VM.PowerState) is VmPowerState.Running or VmPowerState.Paused && live.Contains(vm.Get(XenApi.VM.ResidentOn)))
            {
                var priority = priorities?.GetValueOrDefault(vm.Ref) ?? vm.Get(XenApi.VM.HaRestartPriority);
                vms.Add(new PlanVm(vm.Ref, vm.Get(XenApi.VM.ResidentOn), Placement.MemoryNeeded(vm), priority == RestartPriority.Restart));
            }
        }

        return new FailoverSnapshot(pool, hosts, vms);
    }

    public async Task<int> MaxFailuresToTolerateAsync(CancellationToken cancellationToken, IReadOnlyDictionary<string, string>? priorities = null)
    {
        var snapshot = await SnapshotAsync(cancellationToken, priorities);
        return FailoverPlanner.MaxFailuresToTolerate(snapshot.Hosts, snapshot.Vms);
    }

    /// <summary>
    /// Refuses an operation whose outcome (<paramref name="change"/> applied to the current VMs) would break the plan
    /// for the pool's failures to tolerate. Does nothing with HA off or overcommit allowed.
    /// </summary>
    public async Task CheckAdmissionAsync(Func<IReadOnlyList<PlanVm>, IReadOnlyList<PlanVm>> change, CancellationToken cancellationToken, long? failuresToTolerate = null)
    {
        var snapshot = await SnapshotAsync(cancellationToken);
        if (!snapshot.Pool.Get(XenApi.Pool.HaEnabled) || snapshot.Pool.Get(XenApi.Pool.HaAllowOvercommit))
        {
            return;
        }

        var n = (int)(failuresToTolerate ?? snapshot.Pool.Get(XenApi.Pool.HaHostFailuresToTolerate));
        if (!FailoverPlanner.PlanExists(snapshot.Hosts, change(snapshot.Vms), n))
        {
            throw new XenApiException(ErrorCodes.HaOperationWouldBreakFailoverPlan);
        }
    }

    /// <summary>
    /// <c>host.disable</c> with HA on, as xapi checks it: refused (HA_OPERATION_WOULD_BREAK_FAILOVER_PLAN) when a plan
    /// for <c>ha_plan_exists_for</c> failures exists now and would not once the host offers no room for restarts. A pool
    /// already without a plan cannot get worse, and is not blocked. Nothing with HA off or overcommit allowed.
    /// </summary>
    public async Task CheckHostDisableAsync(string hostRef, CancellationToken cancellationToken)
    {
        if ((await database.GetAllAsync(XenClasses.Pool, cancellationToken)).Count == 0)
        {
            return; // no pool yet, so no HA
        }

        var snapshot = await SnapshotAsync(cancellationToken);
        if (!snapshot.Pool.Get(XenApi.Pool.HaEnabled) || snapshot.Pool.Get(XenApi.Pool.HaAllowOvercommit))
        {
            return;
        }

        var n = (int)snapshot.Pool.Get(XenApi.Pool.HaPlanExistsFor);
        if (!FailoverPlanner.PlanExists(snapshot.Hosts, snapshot.Vms, n))
        {
            return;
        }

        var disabled = snapshot.Hosts.Select(h => h.Ref == hostRef ? h with { Capacity = 0 } : h).ToList();
        if (!FailoverPlanner.PlanExists(disabled, snapshot.Vms, n))
        {
            throw new XenApiException(ErrorCodes.HaOperationWouldBreakFailoverPlan);
        }
    }

    /// <summary>
    /// Recomputes <c>pool.ha_plan_exists_for</c> and <c>ha_overcommitted</c> (XenServer keeps them current), as xapi's
    /// update_pool_status: the plan is for the failures the pool is to tolerate, never more (xapi writes
    /// <c>ha_host_failures_to_tolerate</c> while a plan for it exists, and the smaller of the two once overcommitted), so
    /// that an operation is refused only when it breaks what the administrator asked for, not a plan beyond it: with two
    /// failures tolerable and one asked for, a host may still be disabled for maintenance.
    /// </summary>
    public async Task RefreshPoolAsync(CancellationToken cancellationToken)
    {
        var snapshot = await SnapshotAsync(cancellationToken);
        var max = snapshot.Pool.Get(XenApi.Pool.HaEnabled) ? FailoverPlanner.MaxFailuresToTolerate(snapshot.Hosts, snapshot.Vms) : 0;
        await database.UpdateAsync([(XenClasses.Pool, snapshot.Pool.Ref)], (objs, tx) =>
        {
            var p = objs[0].Clone();
            var toTolerate = p.Get(XenApi.Pool.HaHostFailuresToTolerate);
            var planFor = p.Get(XenApi.Pool.HaEnabled) ? Math.Min(toTolerate, max) : 0;
            var overcommitted = p.Get(XenApi.Pool.HaEnabled) && max < toTolerate;
            if (p.Get(XenApi.Pool.HaPlanExistsFor) != planFor || p.Get(XenApi.Pool.HaOvercommitted) != overcommitted)
            {
                p.Set(XenApi.Pool.HaPlanExistsFor, planFor);
                p.Set(XenApi.Pool.HaOvercommitted, overcommitted);
                tx.Update(p);
            }
        }, cancellationToken);
    }
}
