using Microsoft.Extensions.Logging;

namespace Corral.HighAvailability;

/// <summary>
/// The master's half of HA, one round at a time. When a host is not live while the pool database still places VMs on
/// it, the master records a recovery (<see cref="RecoveryRecord"/>); unless its storage heartbeat moves (isolated, or
/// its agent down: its VMs are left alone), it powers the host off when it has a fence agent, or else waits until its
/// storage heartbeat has stood still for <see cref="HaTimings.HeartbeatStaleAfter"/> as this
/// master read it (a host whose heartbeat moves is isolated, not dead, and keeps its VMs; one whose heartbeat stopped
/// has killed them, <see cref="SelfFencePolicy"/>) and <see cref="HaTimings.FenceMargin"/> has passed; then it records the
/// VMs halted and restarts the protected ones on live hosts with room: priority <c>restart</c> before
/// <c>best-effort</c>, each group by <c>order</c>, honouring <c>start_delay</c>. What cannot be placed is reported
/// once and retried. The agent's coordinator and the HA simulation both drive this class; only the world differs.
/// </summary>
public sealed class RecoveryEngine(HaTimings timings, TimeProvider clock, ILogger logger)
{
    /// <summary>How many rounds the caller runs back to back while each moves a recovery on, before its usual tick.</summary>
    public const int BackToBackRounds = 4;

    private TimeSpan? _lastPlanRefresh;

    // This master's own memory of attempts (fence agents by host, restarts by VM), to space retries; a new master
    // starts afresh, which only means one early retry.
    private readonly Dictionary<string, TimeSpan> _lastAttempt = new(StringComparer.Ordinal);

    // When this master first saw each host's recovery waiting, on its own monotonic clock: the fence margin counts from
    // there, never from a time another master wrote (two hosts' wall clocks are never compared).
    private readonly Dictionary<string, TimeSpan> _waitingSeen = new(StringComparer.Ordinal);

    private DateTime Now => clock.GetUtcNow().UtcDateTime;

    /// <summary>
    /// Whether the last round found nothing HA could have to do: HA off and no recovery under way. Only HA being
    /// enabled (a change of the pool record) can give the next round work, so the caller may wait for that.
    /// </summary>
    public bool Idle { get; private set; }

    /// <summary>
    /// Whether the last round found no recovery under way and began none. Until the pool, a host, a host's liveness
    /// or a VM changes, the next round would find the same (only the plan's refresh is due by time), so the caller may
    /// wait for such a change rather than tick; a round with a recovery under way has waits that only time ends.
    /// </summary>
    public bool Quiet { get; private set; }

    private TimeSpan Monotonic => MonotonicClock.Now(clock);

    /// <summary>
    /// One round. True when it moved a recovery on (a host's recovery recorded, the host power-fenced or declared
    /// fenced): the caller runs the next round at once rather than after its tick, since that round has work waiting.
    /// </summary>
    public async Task<bool> RunOnceAsync(IRecoveryWorld world, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(world);
        var enabled = await world.HaEnabledAsync(cancellationToken);
        var records = await world.RecoveriesAsync(cancellationToken);
        Idle = enabled is null || (enabled == false && records.Count == 0);
        Quiet = Idle;
        if (Idle)
        {
            return false;
        }

        // A waiting recovery this master saw end (or another master end) starts its margin afresh if it comes back.
        foreach (var hostRef in _waitingSeen.Keys.Where(h => !records.TryGetValue(h, out var r) || r.State != RecoveryStates.Detected).ToList())
        {
            _waitingSeen.Remove(hostRef);
        }

        var progressed = false;
        var vms = await world.VmsAsync(cancellationToken);
        foreach (var host in await world.HostsAsync(cancellationToken))
        {
            if (!records.TryGetValue(host.Ref, out var record))
            {
                if (enabled == true && !host.Live && vms.Any(v => v.ResidentOn == host.Ref && v.IsActive))
                {
                    var detected = new RecoveryRecord { HostRef = host.Ref, WaitingSinceUtc = Now, Heartbeat = world.Heartbeat(host) };
                    await world.SaveAsync(detected, cancellationToken);
                    _waitingSeen[host.Ref] = Monotonic;
                    progressed = true;
                    logger.LogWarning(HaEvents.HostUnleased, "HA: host {Host} has lost its liveness lease with VMs on it; waiting for it to be fenced", host.Name);
                }

                continue;
            }

            if (record.State == RecoveryStates.Detected)
            {
                _waitingSeen.TryAdd(host.Ref, Monotonic);
                progressed |= await WaitForFenceAsync(world, record, host, vms, cancellationToken);
            }
            else
            {
                await RestartAsync(world, record, host, vms, cancellationToken);
            }
        }

        // The plan (ha_plan_exists_for) is for people and for the next failure: it comes after this round's recoveries,
        // so that a new master's first look at a failed host waits for nothing.
        if (enabled == true && (_lastPlanRefresh is not { } refreshed || Monotonic - refreshed > timings.PlanRefresh))
        {
            _lastPlanRefresh = Monotonic;
            await world.RefreshPlanAsync(cancellationToken);
        }

        Quiet = records.Count == 0 && !progressed;
        return progressed;
    }

    private async Task<bool> WaitForFenceAsync(IRecoveryWorld world, RecoveryRecord record, HaHost host, IReadOnlyList<HaVm> vms, CancellationToken cancellationToken)
    {
        if (host.Live)
        {
            // Back before it was declared fenced: it kept (or re-registered) its lease; nothing to recover.
            logger.LogInformation(HaEvents.HostBack, "HA: host {Host} is live again; no recovery", host.Name);
            await world.DeleteAsync(record, cancellationToken);
            return false;
        }

        var heartbeat = world.Heartbeat(host);
        if (!record.PowerFenced && heartbeat is not null && heartbeat != record.Heartbeat)
        {
            // Its storage heartbeat moves: the host is isolated (or its agent is down), not dead. Its VMs run on, and a
            // fence agent is not used on it; it kills them itself (and stops beating) only if its heartbeat stops landing
            // or its isolation response says so.
            if (!record.Isolated)
            {
                logger.LogWarning(HaEvents.HostIsolated, "HA: host {Host} has no lease but its storage heartbeat moves ({Counter}): isolated, its VMs left running", host.Name, heartbeat);
            }

            await world.SaveAsync(record with { Heartbeat = heartbeat, Isolated = true }, cancellationToken);
            return false;
        }

        var stillFor = world.HeartbeatStillFor(host);
        if (!record.PowerFenced && host.HasFenceAgent && (stillFor is null || stillFor >= timings.OwnHeartbeatWindow)
            && (!_lastAttempt.TryGetValue(host.Ref, out var tried) || Monotonic - tried > timings.RetryUnplaced))
        {
            // A fence agent acts as soon as the heartbeat has stood still for two beats (a dead host's had long before its
            // lease expired), and covers what self-fencing cannot: a host frozen whole, whose VMs would run again for a
            // moment when it thaws. A master that cannot read the statefile has only the fence agent to go by.
            _lastAttempt[host.Ref] = Monotonic;
            if (await world.PowerFenceAsync(host, cancellationToken))
            {
                record = record with { PowerFenced = true };
                await world.SaveAsync(record, cancellationToken);
                logger.LogWarning(HaEvents.PowerFenced, "HA: host {Host} powered off by its fence agent", host.Name);
            }
        }

        // The heartbeat must have stood still long enough, as this master read the statefile (a dead host's stopped
        // before its lease expired, so this is usually true at once; a master that cannot read the statefile gathers
        // no evidence and waits), and the fence margin must have passed since the lease was seen gone.
        var waitedFor = Monotonic - _waitingSeen[host.Ref];
        if (!record.PowerFenced && (waitedFor < timings.FenceMargin || stillFor is null || stillFor < timings.HeartbeatStaleAfter))
        {
            return false;
        }

        if (!await world.MigrationsSettledAsync(host, cancellationToken))
        {
            return false;
        }

        // Fenced: its VMs are halted, as far as the pool is concerned, in the same transaction that starts the restarts.
        var onHost = vms.Where(v => v.ResidentOn == host.Ref && v.IsActive).ToList();
        var restarts = RestartItem.Ordered(onHost);
        await world.DeclareFencedAsync(record with { State = RecoveryStates.Restarting, Restarts = restarts, LastStartUtc = DateTime.MinValue }, onHost,
            cancellationToken);
        logger.LogWarning(HaEvents.HostFenced, "HA: host {Host} is fenced ({How}); {Count} VM(s) halted, {Restarts} to restart", host.Name,
            record.PowerFenced ? "powered off by its fence agent" : $"no lease, and its storage heartbeat still for {stillFor?.TotalSeconds:0.0} s",
            onHost.Count, restarts.Count);
        return true;
    }

    private async Task RestartAsync(IRecoveryWorld world, RecoveryRecord record, HaHost failed, IReadOnlyList<HaVm> vms, CancellationToken cancellationToken)
    {
        var now = Now;
        var done = record.Done.ToHashSet(StringComparer.Ordinal);
        var reported = record.Reported.ToHashSet(StringComparer.Ordinal);
        var lastStart = record.LastStartUtc;
        var byRef = vms.ToDictionary(v => v.Ref, StringComparer.Ordinal);
        var protectedPending = false;
        var batch = new List<(RestartItem Item, HaVm Vm)>();
        foreach (var item in record.Restarts.Where(i => !done.Contains(i.VmRef)))
        {
            if (!byRef.TryGetValue(item.VmRef, out var vm) || vm.PowerState != "Halted" || !vm.IsProtected)
            {
                // Destroyed, started by someone else, or no longer protected: not HA's to start.
                done.Add(item.VmRef);
                continue;
            }

            if (item.Priority == RestartPriority.BestEffort && protectedPending)
            {
                // Best-effort VMs only take what room the protected ones leave.
                break;
            }

            if (_lastAttempt.TryGetValue(item.VmRef, out var attempted) && reported.Contains(item.VmRef) && Monotonic - attempted < timings.RetryUnplaced)
            {
                protectedPending |= item.Priority == RestartPriority.Restart;
                continue;
            }

            // One group at a time: same priority and order, no start delay (a delayed VM goes alone, its delay after
            // the previous start).
            if (batch.Count > 0 && (item.StartDelaySeconds > 0 || item.Priority != batch[0].Item.Priority || item.Order != batch[0].Item.Order))
            {
                break;
            }

            if (now < lastStart + TimeSpan.FromSeconds(item.StartDelaySeconds))
            {
                break;
            }

            batch.Add((item, vm));
            if (item.StartDelaySeconds > 0)
            {
                break;
            }
        }

        if (batch.Count > 0)
        {
            var hosts = await PlaceAsync(world, batch.Select(b => b.Vm).ToList(), cancellationToken);
            var outcomes = await Task.WhenAll(batch.Select(async b =>
            {
                _lastAttempt[b.Item.VmRef] = Monotonic;
                try
                {
                    var hostRef = await world.StartAsync(b.Vm, hosts.GetValueOrDefault(b.Item.VmRef), cancellationToken);
                    logger.LogWarning("HA: restarted VM {Vm} on {Host}", b.Vm.Name, hostRef);
                    return (b.Item, b.Vm, Error: (VmRestartException?)null);
                }
                catch (VmRestartException ex)
                {
                    return (b.Item, b.Vm, Error: ex);
                }
            }));
            foreach (var (item, vm, error) in outcomes)
            {
                if (error is null)
                {
                    done.Add(item.VmRef);
                    lastStart = Now;
                }
                else if (reported.Add(item.VmRef))
                {
                    logger.LogWarning("HA: could not restart VM {Vm}: {Error}; retrying when capacity returns", vm.Name, error.Message);
                    await world.ReportRestartFailedAsync(vm, error.ErrorDescription, cancellationToken);
                }
            }
        }

        if (record.Restarts.All(i => done.Contains(i.VmRef)))
        {
            await world.DeleteAsync(record, cancellationToken);
            logger.LogInformation("HA: recovery of host {Host} complete", failed.Name);
            return;
        }

        var next = record with { Done = [.. done], Reported = [.. reported], LastStartUtc = lastStart };
        if (next.ToJson() != record.ToJson())
        {
            await world.SaveAsync(next, cancellationToken);
        }
    }

    /// <summary>
    /// Hosts for a group started at once, as evacuation plans: largest VM first, each on the live, enabled host that
    /// reaches its disks with the most room left, among those ready to start it at once if any has the room. A VM with
    /// no such host is left to <c>VM.start</c>, which says why.
    /// </summary>
    private static async Task<Dictionary<string, string>> PlaceAsync(IRecoveryWorld world, IReadOnlyList<HaVm> vms, CancellationToken cancellationToken)
    {
        var free = (await world.FreeMemoryAsync(cancellationToken)).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        var hosts = (await world.HostsAsync(cancellationToken)).Where(h => h.Enabled && h.Live).ToList();
        var chosen = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var vm in vms.OrderByDescending(v => v.Memory))
        {
            var fitting = new List<HaHost>();
            foreach (var host in hosts.OrderByDescending(h => free.GetValueOrDefault(h.Ref)).ThenBy(h => h.Name, StringComparer.Ordinal))
            {
                if (free.GetValueOrDefault(host.Ref) >= vm.Memory && await world.ReachesStorageAsync(vm, host, cancellationToken))
                {
                    fitting.Add(host);
                }
            }

            HaHost? best = null;
            foreach (var host in fitting)
            {
                if (await world.ReadyToStartAsync(vm, host, cancellationToken))
                {
                    best = host;
                    break;
                }
            }

            if ((best ?? fitting.FirstOrDefault()) is { } target)
            {
                chosen[vm.Ref] = target.Ref;
                free[target.Ref] -= vm.Memory;
            }
        }

        return chosen;
    }
}
