using Corral.Api.Dispatch;
using Corral.Api.Operations;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Api.Migration;

/// <summary>
/// Ends a migration whose source host is gone, as the source's agent would have (<c>MigrationHandler</c>'s conclusion):
/// written into the caller's transaction, guarded by the record's revision, so that it happens once whoever does it
/// (HA fencing the source, or the destination that received the VM).
/// </summary>
public static class MigrationEnding
{
    /// <summary>
    /// The VM once its migration has ended, either way: the migration's entry gone from its operations (one migration
    /// per VM at a time, the record being the lock, so such entries are this migration's) and no host scheduled.
    /// </summary>
    public static XenObject WithoutMigration(XenObject vm)
    {
        var v = vm.Clone();
        v.Set(XenApi.VM.CurrentOperations, vm.Get(XenApi.VM.CurrentOperations).Where(kv => kv.Value is not (VmOperations.PoolMigrate or VmOperations.MigrateSend))
            .ToDictionary());
        v.Set(XenApi.VM.ScheduledToBeResidentOn, OpaqueRef.Null);
        return v;
    }

    /// <summary>
    /// Adds to <paramref name="tx"/>: the record (the VM's migration lock) deleted; the source's queued half dropped
    /// (a host powered on again must not resume it); the caller's tasks ended, success if the VM reached the
    /// destination, else VM_MIGRATE_FAILED; and, given <paramref name="movedVm"/>, the migration's entries cleared from
    /// that VM's operations (a VM that stayed on the source is declared halted by the caller, which clears them).
    /// </summary>
    public static async Task AddAsync(IPoolDatabase database, PoolTransaction tx, MigrationRecord migration, long revision, XenObject? movedVm,
        DateTime nowUtc, CancellationToken cancellationToken)
    {
        tx.Require(migration.Key, revision);
        tx.DeleteKey(migration.Key);
        var moved = migration.State == MigrationStates.Completed;
        if (movedVm is not null)
        {
            tx.Update(WithoutMigration(movedVm));
        }

        var tasks = new HashSet<string>(StringComparer.Ordinal) { migration.TaskRef };
        foreach (var (key, json) in await database.Leases.GetPrefixAsync(HostOperationQueue.HostPrefix(migration.SourceRef), cancellationToken)
                     )
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
            if (await database.TryGetAsync(XenClasses.Task, taskRef, cancellationToken) is { } task
                && task.Get(XenApi.Task.Status) is TaskStatusType.Pending or TaskStatusType.Cancelling)
            {
                var t = task.Clone();
                t.Set(XenApi.Task.Status, moved ? TaskStatusType.Success : TaskStatusType.Failure);
                t.Set(XenApi.Task.Progress, 1.0);
                t.Set(XenApi.Task.Finished, nowUtc);
                if (!moved)
                {
                    t.Set(XenApi.Task.ErrorInfo,
                    [
                        ErrorCodes.VmMigrateFailed, migration.VmRef, migration.SourceRef, migration.DestinationRef,
                        migration.Error.Length > 0 ? migration.Error : "the source host failed during the migration",
                    ]);
                }

                tx.Update(t);
            }
        }
    }
}
