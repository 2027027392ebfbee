using Corral.Agent.Storage;
using Corral.Api.Dispatch;
using Corral.Api.HighAvailability;
using Corral.Api.Messages;
using Corral.Api.Methods;
using Corral.Api.Migration;
using Corral.Api.Operations;
using Corral.HighAvailability;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Agent.HighAvailability;

/// <summary>
/// HA's recovery over the real pool: objects and recovery records in etcd, the heartbeat SR's files, the hosts' fence
/// agents, <c>VM.start</c> (which places, claims the VM's ownership on the target's lease and waits for QEMU).
/// </summary>
public sealed class PoolRecoveryWorld(
    IPoolDatabase database,
    Placement placement,
    VmStarter starter,
    FailoverPlanning planning,
    StorageHeartbeat heartbeats,
    FenceAgents fenceAgents,
    VmLeases leases,
    TimeProvider clock,
    ILogger<PoolRecoveryWorld> logger) : IRecoveryWorld
{
    private readonly HashSet<string> _waitingForMigration = new(StringComparer.Ordinal);

    // The objects behind the last HostsAsync/VmsAsync, so that writes are guarded by the revisions those reads saw.
    private Dictionary<string, XenObject> _hosts = new(StringComparer.Ordinal);
    private Dictionary<string, XenObject> _vms = new(StringComparer.Ordinal);

    // Each recovery record as this master last read or wrote it: its writes apply only over that, since the failed
    // host itself may have changed the record meanwhile (see RecoveryRecord.WithRestartsRequested).
    private readonly Dictionary<string, string> _recordsSeen = new(StringComparer.Ordinal);

    public static string KeyOf(string hostRef) => PoolKeys.HaRecoveries + hostRef;

    public async Task<bool?> HaEnabledAsync(CancellationToken cancellationToken) =>
        (await database.GetAllAsync(XenClasses.Pool, cancellationToken)).SingleOrDefault()?.Get(XenApi.Pool.HaEnabled);

    public async Task<IReadOnlyDictionary<string, RecoveryRecord>> RecoveriesAsync(CancellationToken cancellationToken)
    {
        var raw = await database.Leases.GetPrefixAsync(PoolKeys.HaRecoveries, cancellationToken);
        _recordsSeen.Clear();
        var records = new Dictionary<string, RecoveryRecord>(StringComparer.Ordinal);
        foreach (var json in raw.Values)
        {
            var record = RecoveryRecord.FromJson(json);
            records[record.HostRef] = record;
            _recordsSeen[record.HostRef] = json;
        }

        return records;
    }

    public async Task<IReadOnlyList<HaHost>> HostsAsync(CancellationToken cancellationToken)
    {
        var hosts = await database.GetAllAsync(XenClasses.Host, cancellationToken);
        _hosts = hosts.ToDictionary(h => h.Ref, StringComparer.Ordinal);
        var result = new List<HaHost>();
        foreach (var host in hosts)
        {
            result.Add(new HaHost(host.Ref, host.Uuid, host.Get(XenApi.Host.NameLabel), await placement.IsLiveAsync(host, cancellationToken),
                host.Get(XenApi.Host.Enabled), FenceAgents.Configured(host)));
        }

        return result;
    }

    public async Task<IReadOnlyList<HaVm>> VmsAsync(CancellationToken cancellationToken)
    {
        var vms = await database.GetAllAsync(XenClasses.VM, cancellationToken);
        _vms = vms.ToDictionary(v => v.Ref, StringComparer.Ordinal);
        return vms.Select(v => new HaVm(v.Ref, v.Get(XenApi.VM.NameLabel), v.GetString("power_state"), v.Get(XenApi.VM.ResidentOn),
            v.Get(XenApi.VM.HaRestartPriority), v.Get(XenApi.VM.Order), v.Get(XenApi.VM.StartDelay), Placement.MemoryNeeded(v))).ToList();
    }

    // The heartbeat watcher has the statefile directory already; looking it up again each round would cost reads.
    public long? Heartbeat(HaHost host) => heartbeats.Counter(host.Uuid);

    public TimeSpan? HeartbeatStillFor(HaHost host) => heartbeats.StillFor(host.Uuid);

    public async Task SaveAsync(RecoveryRecord record, CancellationToken cancellationToken)
    {
        var key = KeyOf(record.HostRef);
        var revision = await RevisionAsSeenAsync(record.HostRef, cancellationToken);
        var tx = new PoolTransaction();
        tx.Require(key, revision);
        var json = record.ToJson();
        tx.PutKey(key, json);
        await database.CommitAsync(tx, cancellationToken);
        _recordsSeen[record.HostRef] = json;
    }

    public async Task DeleteAsync(RecoveryRecord record, CancellationToken cancellationToken)
    {
        var key = KeyOf(record.HostRef);
        var revision = await RevisionAsSeenAsync(record.HostRef, cancellationToken);
        var tx = new PoolTransaction();
        tx.Require(key, revision);
        tx.DeleteKey(key);
        await database.CommitAsync(tx, cancellationToken);
        _recordsSeen.Remove(record.HostRef);
    }

    /// <summary>The record's revision if it still holds what this master saw (0 if it saw none and there is none).</summary>
    /// <exception cref="ConcurrentUpdateException">Someone else changed it meanwhile.</exception>
    private async Task<long> RevisionAsSeenAsync(string hostRef, CancellationToken cancellationToken)
    {
        var (current, revision) = await database.Leases.GetWithRevisionAsync(KeyOf(hostRef), cancellationToken);
        if (current != _recordsSeen.GetValueOrDefault(hostRef))
        {
            throw new ConcurrentUpdateException($"HA's recovery of host {hostRef} changed meanwhile");
        }

        return revision;
    }

    public async Task<bool> MigrationsSettledAsync(HaHost host, CancellationToken cancellationToken)
    {
        foreach (var (migration, _) in await MigrationsFromAsync(host.Ref, cancellationToken))
        {
            if (migration.State is not (MigrationStates.Aborting or MigrationStates.Completed)
                && await database.TryGetAsync(XenClasses.Host, migration.DestinationRef, cancellationToken) is { } destination
                && await placement.IsLiveAsync(destination, cancellationToken))
            {
                if (_waitingForMigration.Add(migration.Id))
                {
                    logger.LogWarning("HA: host {Host} was migrating VM {Vm} to {Destination}; waiting for the destination to settle it",
                        host.Name, migration.VmRef, destination.Get(XenApi.Host.NameLabel));
                }

                return false;
            }
        }

        return true;
    }

    private async Task<IReadOnlyList<(MigrationRecord Record, long Revision)>> MigrationsFromAsync(string hostRef, CancellationToken cancellationToken)
    {
        var found = new List<(MigrationRecord, long)>();
        foreach (var key in (await database.Leases.GetPrefixAsync(MigrationRecord.Prefix, cancellationToken)).Keys)
        {
            var (json, revision) = await database.Leases.GetWithRevisionAsync(key, cancellationToken);
            if (json is not null && MigrationRecord.FromJson(json) is { } migration && migration.SourceRef == hostRef)
            {
                found.Add((migration, revision));
            }
        }

        return found;
    }

    public async Task DeclareFencedAsync(RecoveryRecord next, IReadOnlyList<HaVm> halted, CancellationToken cancellationToken)
    {
        var key = KeyOf(next.HostRef);
        var tx = new PoolTransaction();
        tx.Require(key, await RevisionAsSeenAsync(next.HostRef, cancellationToken));
        foreach (var vm in halted)
        {
            tx.Update(VmPowerStates.DeclaredHalted(_vms[vm.Ref]));
        }

        foreach (var (migration, revision) in await MigrationsFromAsync(next.HostRef, cancellationToken))
        {
            await EndMigrationAsync(tx, migration, revision, _hosts[next.HostRef], halted, cancellationToken);
        }

        var json = next.ToJson();
        tx.PutKey(key, json);
        await database.CommitAsync(tx, cancellationToken);
        _recordsSeen[next.HostRef] = json;
    }

    public Task<bool> PowerFenceAsync(HaHost host, CancellationToken cancellationToken) => fenceAgents.FenceAsync(_hosts[host.Ref], cancellationToken);

    public Task<IReadOnlyDictionary<string, long>> FreeMemoryAsync(CancellationToken cancellationToken) => placement.FreeMemoryByHostAsync(cancellationToken);

    public async Task<bool> ReachesStorageAsync(HaVm vm, HaHost host, CancellationToken cancellationToken) =>
        await placement.MissingStorageAsync(_vms[vm.Ref], host.Ref, cancellationToken) is null;

    public async Task<bool> ReadyToStartAsync(HaVm vm, HaHost host, CancellationToken cancellationToken) =>
        await leases.ReadyOnAsync(_vms[vm.Ref], host.Ref, cancellationToken);

    public async Task<string> StartAsync(HaVm vm, string? hostRef, CancellationToken cancellationToken)
    {
        try
        {
            var context = new CallContext(OpaqueRef.Null, "ha", "VM.start");
            return await starter.StartAsync(context, vm.Ref, hostRef, false, cancellationToken, haRestart: true);
        }
        catch (XenApiException ex)
        {
            throw new VmRestartException(ex.ErrorDescription);
        }
    }

    public async Task ReportRestartFailedAsync(HaVm vm, IReadOnlyList<string> error, CancellationToken cancellationToken)
    {
        var tx = new PoolTransaction();
        PoolMessages.Create(tx, "HA_PROTECTED_VM_RESTART_FAILED", 2L, Cls.VM, _vms.TryGetValue(vm.Ref, out var known) ? known.Uuid : "",
            $"HA could not restart VM '{vm.Name}': {string.Join(", ", error)}. It will be retried when capacity returns.", clock.GetUtcNow().UtcDateTime);
        await database.CommitAsync(tx, cancellationToken);
    }

    public Task RefreshPlanAsync(CancellationToken cancellationToken) => planning.RefreshPoolAsync(cancellationToken);

    /// <summary>
    /// Ends, in the fence transaction, a migration the fenced host was the source of, as its agent would have
    /// (<see cref="MigrationEnding"/>). A VM still on the fenced host is declared halted with the others (clearing its
    /// operations); one that had reached the destination keeps running there.
    /// </summary>
    private async Task EndMigrationAsync(PoolTransaction tx, MigrationRecord migration, long revision, XenObject host, IReadOnlyList<HaVm> halted,
        CancellationToken cancellationToken)
    {
        var moved = migration.State == MigrationStates.Completed;
        var movedVm = moved && _vms.TryGetValue(migration.VmRef, out var vm) && halted.All(v => v.Ref != vm.Ref) ? vm : null;
        await MigrationEnding.AddAsync(database, tx, migration, revision, movedVm, clock.GetUtcNow().UtcDateTime, cancellationToken);
        logger.LogWarning("HA: the migration of VM {Vm} from fenced host {Host} ends: {Outcome}", migration.VmRef, host.Get(XenApi.Host.NameLabel),
            moved ? "the VM had reached the destination" : "it stays halted for HA to restart");
    }
}
