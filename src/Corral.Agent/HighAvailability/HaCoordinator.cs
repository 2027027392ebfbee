using Corral.Agent.Hosting;
using Corral.Api.Dispatch;
using Corral.Api.HighAvailability;
using Corral.Api.Methods;
using Corral.Api.Migration;
using Corral.Api.Operations;
using Corral.Api.Pool;
using Corral.HighAvailability;
using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.Extensions.Options;

namespace Corral.Agent.HighAvailability;

/// <summary>
/// The master's half of HA. When a host's liveness lease is gone while the pool database still places VMs on it, the
/// master records a recovery (<see cref="RecoveryRecord"/>), waits until the host must have fenced itself — the
/// host stops its VMs before its lease can expire (<see cref="SelfFence"/>), the master adds
/// <see cref="HaOptions.FenceMargin"/> — and until its storage heartbeat has stopped moving, then records the VMs
/// halted and restarts the protected ones on live hosts with room: priority <c>restart</c> before <c>best-effort</c>,
/// each group by <c>order</c>, honouring <c>start_delay</c>. What cannot be placed is reported in a pool message and
/// retried. It also keeps <c>pool.ha_plan_exists_for</c> and <c>ha_overcommitted</c> current.
/// </summary>
public sealed class HaCoordinator(
    IPoolDatabase database,
    HostIdentity identity,
    MasterState master,
    Placement placement,
    VmStarter starter,
    FailoverPlanning planning,
    StorageHeartbeat heartbeats,
    FenceAgents fenceAgents,
    TimeProvider clock,
    IOptions<HaOptions> options,
    ILogger<HaCoordinator> logger) : BackgroundService
{
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan RetryUnplaced = TimeSpan.FromSeconds(5);
    private DateTime _lastPlanRefresh;
    private readonly Dictionary<string, DateTime> _lastAttempt = new(StringComparer.Ordinal);
    private readonly HashSet<string> _waitingForMigration = new(StringComparer.Ordinal);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (master.MasterRef == identity.Ref)
                {
                    await RunOnceAsync(stoppingToken).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                logger.LogWarning(ex, "HA round failed; retrying");
            }

            await Task.Delay(Tick, clock, stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default).ConfigureAwait(false);
        }
    }

    private async Task RunOnceAsync(CancellationToken cancellationToken)
    {
        var pool = (await database.GetAllAsync(XenClasses.Pool, cancellationToken).ConfigureAwait(false)).SingleOrDefault();
        var records = (await database.Leases.GetPrefixAsync(RecoveryRecord.Prefix, cancellationToken).ConfigureAwait(false)).Values
            .Select(RecoveryRecord.FromJson).ToDictionary(r => r.HostRef, StringComparer.Ordinal);
        if (pool is null || (!pool.GetBool("ha_enabled") && records.Count == 0))
        {
            return;
        }

        var now = clock.GetUtcNow().UtcDateTime;
        if (pool.GetBool("ha_enabled") && now - _lastPlanRefresh > TimeSpan.FromSeconds(5))
        {
            _lastPlanRefresh = now;
            await planning.RefreshPoolAsync(cancellationToken).ConfigureAwait(false);
        }

        // The heartbeat watcher has the statefile directory already; looking it up again each round would cost reads.
        var directory = heartbeats.StatefileDirectory;
        var vms = await database.GetAllAsync(XenClasses.VM, cancellationToken).ConfigureAwait(false);
        foreach (var host in await database.GetAllAsync(XenClasses.Host, cancellationToken).ConfigureAwait(false))
        {
            var live = await placement.IsLiveAsync(host, cancellationToken).ConfigureAwait(false);
            records.TryGetValue(host.Ref, out var record);
            if (record is null)
            {
                if (pool.GetBool("ha_enabled") && !live && vms.Any(v => v.GetString("resident_on") == host.Ref && v.GetString("power_state") is "Running" or "Paused"))
                {
                    var detected = new RecoveryRecord { HostRef = host.Ref, WaitingSinceUtc = now, Heartbeat = ReadHeartbeat(directory, host) };
                    await database.Leases.PutDurableAsync(detected.Key, detected.ToJson(), cancellationToken).ConfigureAwait(false);
                    logger.LogWarning("HA: host {Host} has lost its liveness lease with VMs on it; waiting for it to be fenced", host.GetString("name_label"));
                }

                continue;
            }

            if (record.State == RecoveryStates.Detected)
            {
                await WaitForFenceAsync(record, host, live, directory, vms, now, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await RestartAsync(record, vms, now, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private static long? ReadHeartbeat(string? directory, XenObject host) => directory is null ? null : StorageHeartbeat.Read(directory, host.Uuid);

    private async Task WaitForFenceAsync(RecoveryRecord record, XenObject host, bool live, string? directory, IReadOnlyList<XenObject> vms, DateTime now,
        CancellationToken cancellationToken)
    {
        if (live)
        {
            // Back before it was declared fenced: it kept (or re-registered) its lease; nothing to recover.
            logger.LogInformation("HA: host {Host} is live again; no recovery", host.GetString("name_label"));
            await database.Leases.DeleteAsync(record.Key, cancellationToken).ConfigureAwait(false);
            return;
        }

        if (!record.PowerFenced && FenceAgents.Configured(host) && (!_lastAttempt.TryGetValue(host.Ref, out var tried) || now - tried > RetryUnplaced))
        {
            // A fence agent acts at once, and covers what self-fencing cannot: a host frozen whole, whose VMs would run
            // again for a moment when it thaws.
            _lastAttempt[host.Ref] = now;
            if (await fenceAgents.FenceAsync(host, cancellationToken).ConfigureAwait(false))
            {
                record = record with { PowerFenced = true };
                await database.Leases.PutDurableAsync(record.Key, record.ToJson(), cancellationToken).ConfigureAwait(false);
            }
        }

        var heartbeat = ReadHeartbeat(directory, host);
        if (!record.PowerFenced && heartbeat != record.Heartbeat)
        {
            // Its storage heartbeat still moves: the host is alive on storage (and must be fencing itself); wait on.
            logger.LogWarning("HA: host {Host} has no lease but its storage heartbeat moves ({Counter}); waiting", host.GetString("name_label"), heartbeat);
            var moved = record with { Heartbeat = heartbeat, WaitingSinceUtc = now };
            await database.Leases.PutDurableAsync(moved.Key, moved.ToJson(), cancellationToken).ConfigureAwait(false);
            return;
        }

        // The heartbeat must have stood still long enough (a dead host's stopped before its lease expired, so this is
        // usually true at once), and the fence margin must have passed since the lease was seen gone.
        var stillFor = heartbeats.StillFor(host.Uuid, now) ?? now - record.WaitingSinceUtc;
        if (!record.PowerFenced && (now - record.WaitingSinceUtc < options.Value.FenceMargin || stillFor < options.Value.HeartbeatStaleAfter))
        {
            return;
        }

        // Live migrations the host was sending: only their destination knows whether its copy of a VM still runs, so
        // HA waits until it has either committed (the VM is the destination's now, nothing to restart) or discarded
        // its copy and aborted. A destination that is not live has nobody to wait for.
        var migrations = new List<(MigrationRecord Record, long Revision)>();
        foreach (var (json, revision) in await ReadMigrationsAsync(cancellationToken).ConfigureAwait(false))
        {
            var migration = MigrationRecord.FromJson(json);
            if (migration.SourceRef != host.Ref)
            {
                continue;
            }

            if (migration.State is not (MigrationStates.Aborting or MigrationStates.Completed)
                && await database.TryGetAsync(XenClasses.Host, migration.DestinationRef, cancellationToken).ConfigureAwait(false) is { } destination
                && await placement.IsLiveAsync(destination, cancellationToken).ConfigureAwait(false))
            {
                if (_waitingForMigration.Add(migration.Id))
                {
                    logger.LogWarning("HA: host {Host} was migrating VM {Vm} to {Destination}; waiting for the destination to settle it",
                        host.GetString("name_label"), migration.VmRef, destination.GetString("name_label"));
                }

                return;
            }

            migrations.Add((migration, revision));
        }

        // Fenced: its VMs are halted, as far as the pool is concerned, in the same transaction that starts the restarts.
        var onHost = vms.Where(v => v.GetString("resident_on") == host.Ref && v.GetString("power_state") is "Running" or "Paused").ToList();
        var restarts = onHost
            .Where(v => v.GetString("ha_restart_priority") is RestartPriority.Restart or RestartPriority.BestEffort)
            .OrderBy(v => v.GetString("ha_restart_priority") == RestartPriority.Restart ? 0 : 1)
            .ThenBy(v => v.GetInt("order"))
            .ThenBy(v => v.GetString("name_label"), StringComparer.Ordinal)
            .Select(v => new RestartItem(v.Ref, v.GetString("ha_restart_priority"), v.GetInt("start_delay"), v.GetInt("order")))
            .ToList();
        var tx = new PoolTransaction();
        tx.Require(record.Key, (await database.Leases.GetWithRevisionAsync(record.Key, cancellationToken).ConfigureAwait(false)).Revision);
        foreach (var vm in onHost)
        {
            tx.Update(VmPowerStates.DeclaredHalted(vm));
        }

        foreach (var (migration, revision) in migrations)
        {
            await EndMigrationAsync(tx, migration, revision, host, vms, onHost, cancellationToken).ConfigureAwait(false);
        }

        var restarting = record with { State = RecoveryStates.Restarting, Restarts = restarts, LastStartUtc = DateTime.MinValue };
        tx.PutKey(record.Key, restarting.ToJson());
        await database.CommitAsync(tx, cancellationToken).ConfigureAwait(false);
        logger.LogWarning("HA: host {Host} is fenced ({How}); {Count} VM(s) halted, {Restarts} to restart", host.GetString("name_label"),
            record.PowerFenced ? "powered off by its fence agent" : $"{(now - record.WaitingSinceUtc).TotalSeconds:0.0} s without lease or storage heartbeat",
            onHost.Count, restarts.Count);
    }

    private async Task<IReadOnlyList<(string Json, long Revision)>> ReadMigrationsAsync(CancellationToken cancellationToken)
    {
        var found = new List<(string, long)>();
        foreach (var key in (await database.Leases.GetPrefixAsync(MigrationRecord.Prefix, cancellationToken).ConfigureAwait(false)).Keys)
        {
            var (json, revision) = await database.Leases.GetWithRevisionAsync(key, cancellationToken).ConfigureAwait(false);
            if (json is not null)
            {
                found.Add((json, revision));
            }
        }

        return found;
    }

    /// <summary>
    /// Ends, in the fence transaction, a migration the fenced host was the source of, as its agent would have: the
    /// record (the VM's migration lock) goes, the source's half is dropped from its queue (a host powered on again
    /// must not resume it), and the caller's task ends, success if the VM had reached the destination, else
    /// VM_MIGRATE_FAILED. A VM still on the fenced host is declared halted with the others (clearing its operations).
    /// </summary>
    private async Task EndMigrationAsync(PoolTransaction tx, MigrationRecord migration, long revision, XenObject host, IReadOnlyList<XenObject> vms,
        IReadOnlyList<XenObject> onHost, CancellationToken cancellationToken)
    {
        tx.Require(migration.Key, revision);
        tx.DeleteKey(migration.Key);
        var moved = migration.State == MigrationStates.Completed;
        if (moved && vms.FirstOrDefault(v => v.Ref == migration.VmRef) is { } vm && onHost.All(v => v.Ref != vm.Ref))
        {
            var v = vm.Clone();
            v["current_operations"] = vm.GetStringMap("current_operations").Where(kv => kv.Value is not ("pool_migrate" or "migrate_send"))
                .ToDictionary(kv => kv.Key, kv => (object?)kv.Value);
            v["scheduled_to_be_resident_on"] = OpaqueRef.Null;
            tx.Update(v);
        }

        var tasks = new HashSet<string>(StringComparer.Ordinal) { migration.TaskRef };
        foreach (var (key, json) in await database.Leases.GetPrefixAsync(HostOperationQueue.HostPrefix(host.Ref), cancellationToken).ConfigureAwait(false))
        {
            var operation = HostOperation.FromJson(json);
            if (operation.Kind == HostOperationKinds.VmMigrateSend && operation.Argument("migration") == migration.Id)
            {
                tx.DeleteKey(key);
                tasks.Add(operation.TaskRef);
            }
        }

        foreach (var taskRef in tasks)
        {
            if (await database.TryGetAsync(XenClasses.Task, taskRef, cancellationToken).ConfigureAwait(false) is { } task
                && task.GetString("status") is "pending" or "cancelling")
            {
                var t = task.Clone();
                t["status"] = moved ? "success" : "failure";
                t["progress"] = 1.0;
                t["finished"] = clock.GetUtcNow().UtcDateTime;
                if (!moved)
                {
                    t["error_info"] = new List<object?>
                    {
                        ErrorCodes.VmMigrateFailed, migration.VmRef, migration.SourceRef, migration.DestinationRef,
                        migration.Error.Length > 0 ? migration.Error : "the source host failed during the migration",
                    };
                }

                tx.Update(t);
            }
        }

        logger.LogWarning("HA: the migration of VM {Vm} from fenced host {Host} ends: {Outcome}", migration.VmRef, host.GetString("name_label"),
            moved ? "the VM had reached the destination" : "it stays halted for HA to restart");
    }

    private async Task RestartAsync(RecoveryRecord record, IReadOnlyList<XenObject> vms, DateTime now, CancellationToken cancellationToken)
    {
        var done = record.Done.ToHashSet(StringComparer.Ordinal);
        var reported = record.Reported.ToHashSet(StringComparer.Ordinal);
        var lastStart = record.LastStartUtc;
        var byRef = vms.ToDictionary(v => v.Ref, StringComparer.Ordinal);
        var protectedPending = false;
        var batch = new List<(RestartItem Item, XenObject Vm)>();
        foreach (var item in record.Restarts.Where(i => !done.Contains(i.VmRef)))
        {
            if (!byRef.TryGetValue(item.VmRef, out var vm) || vm.GetString("power_state") != "Halted"
                || vm.GetString("ha_restart_priority") is not (RestartPriority.Restart or RestartPriority.BestEffort))
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

            if (_lastAttempt.TryGetValue(item.VmRef, out var attempted) && reported.Contains(item.VmRef) && now - attempted < RetryUnplaced)
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
            var hosts = await PlaceAsync(batch.Select(b => b.Vm).ToList(), cancellationToken).ConfigureAwait(false);
            var outcomes = await Task.WhenAll(batch.Select(async b =>
            {
                _lastAttempt[b.Item.VmRef] = now;
                try
                {
                    var context = new CallContext(OpaqueRef.Null, "ha", "VM.start");
                    var hostRef = await starter.StartAsync(context, b.Item.VmRef, hosts.GetValueOrDefault(b.Item.VmRef), false, cancellationToken, haRestart: true)
                        .ConfigureAwait(false);
                    logger.LogWarning("HA: restarted VM {Vm} on {Host}", b.Vm.GetString("name_label"), hostRef);
                    return (b.Item, b.Vm, Error: (XenApiException?)null);
                }
                catch (XenApiException ex)
                {
                    return (b.Item, b.Vm, Error: ex);
                }
            })).ConfigureAwait(false);
            foreach (var (item, vm, error) in outcomes)
            {
                if (error is null)
                {
                    done.Add(item.VmRef);
                    lastStart = clock.GetUtcNow().UtcDateTime;
                }
                else if (reported.Add(item.VmRef))
                {
                    logger.LogWarning("HA: could not restart VM {Vm}: {Error}; retrying when capacity returns", vm.GetString("name_label"), error.Message);
                    await ReportAsync(vm, error, cancellationToken).ConfigureAwait(false);
                }
            }
        }

        if (record.Restarts.All(i => done.Contains(i.VmRef)))
        {
            await database.Leases.DeleteAsync(record.Key, cancellationToken).ConfigureAwait(false);
            logger.LogInformation("HA: recovery of host {Host} complete", record.HostRef);
            return;
        }

        var next = record with { Done = [.. done], Reported = [.. reported], LastStartUtc = lastStart };
        if (next.ToJson() != record.ToJson())
        {
            await database.Leases.PutDurableAsync(next.Key, next.ToJson(), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Hosts for a group started at once, as evacuation plans: largest VM first, each on the live, enabled host that
    /// reaches its disks with the most room left. A VM with no such host is left to <c>VM.start</c>, which says why.
    /// </summary>
    private async Task<Dictionary<string, string>> PlaceAsync(IReadOnlyList<XenObject> vms, CancellationToken cancellationToken)
    {
        var free = (await placement.FreeMemoryByHostAsync(cancellationToken).ConfigureAwait(false)).ToDictionary(kv => kv.Key, kv => kv.Value);
        var hosts = new List<XenObject>();
        foreach (var host in await database.GetAllAsync(XenClasses.Host, cancellationToken).ConfigureAwait(false))
        {
            if (host.GetBool("enabled") && await placement.IsLiveAsync(host, cancellationToken).ConfigureAwait(false))
            {
                hosts.Add(host);
            }
        }

        var chosen = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var vm in vms.OrderByDescending(Placement.MemoryNeeded))
        {
            var needed = Placement.MemoryNeeded(vm);
            XenObject? best = null;
            foreach (var host in hosts.OrderByDescending(h => free.GetValueOrDefault(h.Ref)))
            {
                if (free.GetValueOrDefault(host.Ref) >= needed && await placement.MissingStorageAsync(vm, host.Ref, cancellationToken).ConfigureAwait(false) is null)
                {
                    best = host;
                    break;
                }
            }

            if (best is not null)
            {
                chosen[vm.Ref] = best.Ref;
                free[best.Ref] -= needed;
            }
        }

        return chosen;
    }

    /// <summary>A pool message, as XenServer's HA raises HA_PROTECTED_VM_RESTART_FAILED.</summary>
    private async Task ReportAsync(XenObject vm, XenApiException error, CancellationToken cancellationToken)
    {
        var tx = new PoolTransaction();
        tx.Create(XenClasses.MessageSchema, new Dictionary<string, object?>
        {
            ["name"] = "HA_PROTECTED_VM_RESTART_FAILED",
            ["priority"] = 2L,
            ["cls"] = "VM",
            ["obj_uuid"] = vm.Uuid,
            ["timestamp"] = clock.GetUtcNow().UtcDateTime,
            ["body"] = $"HA could not restart VM '{vm.GetString("name_label")}': {string.Join(", ", error.ErrorDescription)}. It will be retried when capacity returns.",
        });
        await database.CommitAsync(tx, cancellationToken).ConfigureAwait(false);
    }
}
