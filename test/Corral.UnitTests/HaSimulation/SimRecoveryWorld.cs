using Corral.Api.Migration;
using Corral.HighAvailability;

namespace Corral.UnitTests.HaSimulation;

/// <summary>A guarded write lost its race (the agent's ConcurrentUpdateException).</summary>
public sealed class SimConflictException(string message) : Exception(message);

/// <summary>
/// <see cref="IRecoveryWorld"/> over the simulated pool, as one host sees it: every read and write goes through
/// <see cref="SimEtcd"/> from that host (and fails when it cannot reach a leader with quorum), VM.start runs the
/// agent's checks and claims the VM's ownership on the target's lease, fence agents power simulated hosts off. Live
/// migrations from a failed host are waited on and ended as PoolRecoveryWorld does (<see cref="MigrationsSettledAsync"/>,
/// <see cref="DeclareFencedAsync"/>); the migrations themselves are <see cref="SimMigration"/>'s.
/// </summary>
public sealed class SimRecoveryWorld(Simulation sim, SimHost me) : IRecoveryWorld
{
    private readonly Dictionary<string, string> _recordsRead = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _vmRevisions = new(StringComparer.Ordinal);
    private readonly HashSet<string> _waitingForMigration = new(StringComparer.Ordinal);
    private int _messages;

    private SimEtcd Etcd => sim.Etcd;

    public Task<bool?> HaEnabledAsync(CancellationToken cancellationToken) => Task.FromResult<bool?>(Etcd.Get(me, SimKeys.HaEnabled) == "true");

    public Task<IReadOnlyDictionary<string, RecoveryRecord>> RecoveriesAsync(CancellationToken cancellationToken)
    {
        var raw = Etcd.GetPrefix(me, SimKeys.Recoveries);
        _recordsRead.Clear();
        var records = new Dictionary<string, RecoveryRecord>(StringComparer.Ordinal);
        foreach (var json in raw.Values)
        {
            var record = RecoveryRecord.FromJson(json);
            records[record.HostRef] = record;
            _recordsRead[record.HostRef] = json;
        }

        return Task.FromResult<IReadOnlyDictionary<string, RecoveryRecord>>(records);
    }

    public Task<IReadOnlyList<HaHost>> HostsAsync(CancellationToken cancellationToken)
    {
        var live = Etcd.GetPrefix(me, Corral.PoolDatabase.PoolKeys.Live);
        IReadOnlyList<HaHost> hosts = sim.Hosts.Select(h => new HaHost(h.Name, h.Name, h.Name, live.ContainsKey(SimKeys.Live(h.Name)),
            Etcd.Get(me, SimKeys.HostEnabled(h.Name)) == "true", h.Spec.Fence.Length > 0)).ToList();
        return Task.FromResult(hosts);
    }

    public Task<IReadOnlyList<HaVm>> VmsAsync(CancellationToken cancellationToken)
    {
        var vms = new List<HaVm>();
        foreach (var vm in sim.Vms.Values)
        {
            var (state, revision) = Etcd.GetWithRevision(me, SimKeys.Vm(vm.Spec.Name));
            _vmRevisions[vm.Spec.Name] = revision;
            var running = state?.StartsWith("Running@", StringComparison.Ordinal) == true;
            vms.Add(new HaVm(vm.Spec.Name, vm.Spec.Name, running ? "Running" : "Halted", running ? state!["Running@".Length..] : "OpaqueRef:NULL",
                vm.Priority, vm.Order, vm.StartDelay, vm.Spec.Memory));
        }

        return Task.FromResult<IReadOnlyList<HaVm>>(vms);
    }

    public long? Heartbeat(HaHost host) => me.StorageCut ? null : sim.Statefile.TryGetValue(host.Ref, out var counter) ? counter : null;

    public TimeSpan? HeartbeatStillFor(HaHost host) =>
        me.Watch.StillFor(host.Uuid, me.Clock.UtcNow - Simulation.Epoch, sim.Scenario.Timings.HeartbeatStaleAfter);

    /// <summary>Unsettled while a migration from the host is undecided and its destination is live: the destination settles it.</summary>
    public Task<bool> MigrationsSettledAsync(HaHost host, CancellationToken cancellationToken)
    {
        foreach (var (migration, _) in MigrationsFrom(host.Ref))
        {
            if (migration.State is not (MigrationStates.Aborting or MigrationStates.Completed)
                && Etcd.Get(me, SimKeys.Live(migration.DestinationRef)) is not null)
            {
                if (_waitingForMigration.Add(migration.Id))
                {
                    sim.Log(me.Name, $"HA: host {host.Name} was migrating VM {migration.VmRef} to {migration.DestinationRef}; waiting for the destination to settle it");
                }

                return Task.FromResult(false);
            }
        }

        return Task.FromResult(true);
    }

    private List<(MigrationRecord Record, long Revision)> MigrationsFrom(string hostRef)
    {
        var found = new List<(MigrationRecord, long)>();
        foreach (var key in Etcd.GetPrefix(me, MigrationRecord.Prefix).Keys)
        {
            var (json, revision) = Etcd.GetWithRevision(me, key);
            if (json is not null && MigrationRecord.FromJson(json) is { } migration && migration.SourceRef == hostRef)
            {
                found.Add((migration, revision));
            }
        }

        return found;
    }

    public Task SaveAsync(RecoveryRecord record, CancellationToken cancellationToken)
    {
        var json = record.ToJson();
        WriteAsSeen(record.HostRef, json);
        _recordsRead[record.HostRef] = json;
        return Task.CompletedTask;
    }

    public Task DeleteAsync(RecoveryRecord record, CancellationToken cancellationToken)
    {
        WriteAsSeen(record.HostRef, null);
        _recordsRead.Remove(record.HostRef);
        return Task.CompletedTask;
    }

    /// <summary>Writes (null: deletes) the record only over what this master last saw of it, as the agent's world does.</summary>
    private void WriteAsSeen(string hostRef, string? json)
    {
        var key = SimKeys.Recoveries + hostRef;
        var (current, revision) = Etcd.GetWithRevision(me, key);
        if (current != _recordsRead.GetValueOrDefault(hostRef) || !Etcd.Txn(me, [(key, revision)], [(key, json, 0)]))
        {
            throw new SimConflictException($"recovery of {hostRef} changed meanwhile");
        }
    }

    public Task DeclareFencedAsync(RecoveryRecord next, IReadOnlyList<HaVm> halted, CancellationToken cancellationToken)
    {
        var key = SimKeys.Recoveries + next.HostRef;
        var (current, revision) = Etcd.GetWithRevision(me, key);
        if (current != _recordsRead.GetValueOrDefault(next.HostRef))
        {
            throw new SimConflictException($"recovery of {next.HostRef} changed meanwhile");
        }

        var guards = new List<(string, long)> { (key, revision) };
        var writes = new List<(string, string?, long)> { (key, next.ToJson(), 0) };
        foreach (var vm in halted)
        {
            guards.Add((SimKeys.Vm(vm.Ref), _vmRevisions[vm.Ref]));
            writes.Add((SimKeys.Vm(vm.Ref), SimKeys.Halted, 0));
        }

        // Its migrations end with it (EndMigrationAsync): the lock goes; a VM that had reached its destination stays
        // there, one still on the fenced source is among the halted above.
        var ended = MigrationsFrom(next.HostRef);
        foreach (var (migration, migrationRevision) in ended)
        {
            guards.Add((migration.Key, migrationRevision));
            writes.Add((migration.Key, null, 0));
        }

        if (!Etcd.Txn(me, guards, writes))
        {
            throw new SimConflictException($"VMs of {next.HostRef} changed while declaring it fenced");
        }

        foreach (var (migration, _) in ended)
        {
            sim.Log(me.Name, $"HA: the migration of VM {migration.VmRef} from fenced host {next.HostRef} ends: "
                + (migration.State == MigrationStates.Completed ? "the VM had reached the destination" : "it stays halted for HA to restart"));
        }

        _recordsRead[next.HostRef] = next.ToJson();
        return Task.CompletedTask;
    }

    public Task<bool> PowerFenceAsync(HaHost host, CancellationToken cancellationToken)
    {
        var target = sim.Host(host.Ref);
        switch (target.Spec.Fence)
        {
            case "lab":
                target.PowerOff($"power-fenced by {me.Name}");
                return Task.FromResult(true);
            default:
                sim.Log(me.Name, $"fence agent of {host.Name} failed");
                return Task.FromResult(false);
        }
    }

    public Task<IReadOnlyDictionary<string, long>> FreeMemoryAsync(CancellationToken cancellationToken) => Task.FromResult(FreeMemory());

    private IReadOnlyDictionary<string, long> FreeMemory()
    {
        var free = sim.Hosts.ToDictionary(h => h.Name, h => h.Spec.Memory, StringComparer.Ordinal);
        foreach (var vm in sim.Vms.Values)
        {
            if (Etcd.Get(me, SimKeys.Vm(vm.Spec.Name)) is { } state && state.StartsWith("Running@", StringComparison.Ordinal))
            {
                free[state["Running@".Length..]] -= vm.Spec.Memory;
            }
        }

        return free;
    }

    public Task<bool> ReachesStorageAsync(HaVm vm, HaHost host, CancellationToken cancellationToken) => Task.FromResult(Reaches(sim.Vm(vm.Ref), host.Ref));

    private static bool Reaches(SimVm vm, string host) => vm.Spec.LocalTo is null || vm.Spec.LocalTo == host;

    /// <summary>
    /// A host has joined the lockspace of the VMs' leases some time after it was powered on (<see cref="HostSpec.LockspaceJoin"/>).
    /// The simulation does not model the leases themselves: a start on a host that has not joined yet (which in the lab
    /// waits for the join) is logged, and runs at once.
    /// </summary>
    public Task<bool> ReadyToStartAsync(HaVm vm, HaHost host, CancellationToken cancellationToken) => Task.FromResult(sim.Host(host.Ref).LockspaceJoined);

    public Task<string> StartAsync(HaVm vm, string? hostRef, CancellationToken cancellationToken) => Task.FromResult(Start(sim.Vm(vm.Ref), hostRef));

    /// <summary>VM.start as the API and the target's agent run it: checks, ownership claim on the target's lease, QEMU.</summary>
    public string Start(SimVm vm, string? hostRef)
    {
        var name = vm.Spec.Name;
        if (Etcd.Get(me, SimKeys.Vm(name)) != SimKeys.Halted)
        {
            throw new VmRestartException(["VM_BAD_POWER_STATE", name, "halted", "running"]);
        }

        var free = FreeMemory();
        var live = Etcd.GetPrefix(me, Corral.PoolDatabase.PoolKeys.Live);
        bool Usable(SimHost h) => live.ContainsKey(SimKeys.Live(h.Name)) && Etcd.Get(me, SimKeys.HostEnabled(h.Name)) == "true";
        SimHost target;
        if (hostRef is null)
        {
            target = sim.Hosts.Where(h => Usable(h) && Reaches(vm, h.Name) && free[h.Name] >= vm.Spec.Memory)
                .OrderByDescending(h => free[h.Name]).ThenBy(h => h.Name, StringComparer.Ordinal).FirstOrDefault()
                ?? throw new VmRestartException(["NO_HOSTS_AVAILABLE"]);
        }
        else
        {
            target = sim.Host(hostRef);
            if (!live.ContainsKey(SimKeys.Live(target.Name)))
            {
                throw new VmRestartException(["HOST_OFFLINE", target.Name]);
            }

            if (Etcd.Get(me, SimKeys.HostEnabled(target.Name)) != "true")
            {
                throw new VmRestartException(["HOST_DISABLED", target.Name]);
            }

            if (!Reaches(vm, target.Name))
            {
                throw new VmRestartException(["VM_REQUIRES_SR", name, vm.Spec.LocalTo!]);
            }

            if (free[target.Name] < vm.Spec.Memory)
            {
                throw new VmRestartException(["HOST_NOT_ENOUGH_FREE_MEMORY", vm.Spec.Memory.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            }
        }

        // The target's agent runs the start: it must be up, reach the pool database and hold its lease.
        if (!target.AgentRunning || target.LeaseId is not { } lease || !Etcd.LeaseExists(lease))
        {
            throw new VmRestartException(["HOST_OFFLINE", target.Name]);
        }

        Etcd.Reach(target);
        if (!Etcd.TryClaim(target, SimKeys.Owner(name), target.Name, lease) && Etcd.Get(target, SimKeys.Owner(name)) != target.Name)
        {
            throw new VmRestartException(["OTHER_OPERATION_IN_PROGRESS", "VM", name]);
        }

        if (!target.LockspaceJoined)
        {
            sim.Log(target.Name, $"starts {name} before joining the VMs' lockspace (in the lab, the start waits for the join)");
        }

        target.StartProcess(vm);
        Etcd.Put(target, SimKeys.Vm(name), SimKeys.RunningOn(target.Name));
        return target.Name;
    }

    public Task ReportRestartFailedAsync(HaVm vm, IReadOnlyList<string> error, CancellationToken cancellationToken)
    {
        Etcd.Put(me, SimKeys.Messages + me.Name + "-" + ++_messages, $"HA_PROTECTED_VM_RESTART_FAILED {vm.Ref} {string.Join(" ", error)}");
        return Task.CompletedTask;
    }

    public Task RefreshPlanAsync(CancellationToken cancellationToken)
    {
        var live = Etcd.GetPrefix(me, Corral.PoolDatabase.PoolKeys.Live);
        var hosts = sim.Hosts.Where(h => live.ContainsKey(SimKeys.Live(h.Name))).Select(h => new PlanHost(h.Name, h.Spec.Memory)).ToList();
        var vms = new List<PlanVm>();
        foreach (var vm in sim.Vms.Values)
        {
            if (Etcd.Get(me, SimKeys.Vm(vm.Spec.Name)) is { } state && state.StartsWith("Running@", StringComparison.Ordinal))
            {
                vms.Add(new PlanVm(vm.Spec.Name, state["Running@".Length..], vm.Spec.Memory, vm.Priority == RestartPriority.Restart));
            }
        }

        var planFor = FailoverPlanner.MaxFailuresToTolerate(hosts, vms).ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (Etcd.Get(me, "/corral/pool/ha_plan_exists_for") != planFor)
        {
            Etcd.Put(me, "/corral/pool/ha_plan_exists_for", planFor);
        }

        return Task.CompletedTask;
    }

    /// <summary>
    /// What the host's agent records when a VM of its stopped (VmSupervisor.MarkHaltedAsync): halted, if the pool
    /// still places it here; if nobody asked it to stop (fenced by this host, crashed) and HA protects it, handed to HA
    /// in the same transaction (<see cref="RecoveryRecord.WithRestartsRequested"/>).
    /// </summary>
    public void RecordStopped(string vm, bool restart, string why)
    {
        var (state, revision) = Etcd.GetWithRevision(me, SimKeys.Vm(vm));
        if (state != SimKeys.RunningOn(me.Name) || me.Processes.ContainsKey(vm))
        {
            // Not ours any more, or a newer copy already runs here.
            return;
        }

        var config = sim.Vm(vm);
        var guards = new List<(string, long)> { (SimKeys.Vm(vm), revision) };
        var writes = new List<(string, string?, long)> { (SimKeys.Vm(vm), SimKeys.Halted, 0), (SimKeys.Owner(vm), null, 0) };
        var handed = restart && Etcd.Get(me, SimKeys.HaEnabled) == "true" && config.Priority is RestartPriority.Restart or RestartPriority.BestEffort;
        if (handed)
        {
            var key = SimKeys.Recoveries + me.Name;
            var (json, recordRevision) = Etcd.GetWithRevision(me, key);
            var record = RecoveryRecord.WithRestartsRequested(json is null ? null : RecoveryRecord.FromJson(json), me.Name,
                [new HaVm(vm, vm, "Halted", "", config.Priority, config.Order, config.StartDelay, config.Spec.Memory)]);
            guards.Add((key, recordRevision));
            writes.Add((key, record.ToJson(), 0));
        }

        if (!Etcd.Txn(me, guards, writes))
        {
            throw new SimUnavailableException($"{vm} or its host's recovery changed while recording it halted; retried later");
        }

        sim.Log(me.Name, $"records {vm} halted ({why}){(handed ? "; HA to restart it" : "")}");
    }
}
