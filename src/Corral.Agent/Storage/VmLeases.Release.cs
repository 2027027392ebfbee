using Corral.Leases.Sanlock;
using Microsoft.Extensions.Logging;

namespace Corral.Agent.Storage;

/// <summary>
/// Leaving the lockspace of an SR no longer plugged here (PBD.unplug, and the SR's forget or destroy that follow it), and
/// stopping its lease volume's export: each plugged NFS or iSCSI SR otherwise keeps a qemu-storage-daemon and a sanlock
/// delta lease on this host for good. sanlock kills the processes that hold a lease in a lockspace it leaves, so a
/// lockspace in which any lease is held here is kept (a VM of the SR still here: PBD.unplug refuses that already).
/// </summary>
public sealed partial class VmLeases
{
    private static readonly EventId Left = new(2408, "LockspaceLeft");
    private static readonly EventId KeptInUse = new(2409, "LockspaceKeptInUse");

    /// <summary>
    /// Leaves the SR's lockspace and stops its lease export here (PBD.unplug, once the PBD is detached). False when it
    /// is kept: a lease in it is held here, a join of it is under way, or sanlock did not answer; the keeper's next pass
    /// tries again (<see cref="ReleaseUnpluggedAsync"/>).
    /// </summary>
    public async Task<bool> ReleaseAsync(string srUuid, CancellationToken cancellationToken)
    {
        if (!Enabled)
        {
            return true;
        }

        if (await sanlock.StatusAsync(cancellationToken) is not { } status)
        {
            logger.LogWarning(KeptInUse, "sanlock did not say which lockspaces this host has: the VM leases of SR {Sr} are left for now", srUuid);
            return false;
        }

        return await ReleaseAsync(srUuid, status, cancellationToken);
    }

    /// <summary>Leaves the lockspaces, and stops the lease exports, of the SRs not in <paramref name="plugged"/> (the keeper's pass).</summary>
    private async Task ReleaseUnpluggedAsync(IReadOnlySet<string> plugged, CancellationToken cancellationToken)
    {
        if (await sanlock.StatusAsync(cancellationToken) is not { } status)
        {
            return;
        }

        var ours = status.Lockspaces.Where(IsOurs).Select(l => l.Name);
        foreach (var srUuid in ours.Concat(_joins.Keys).Concat(volumes.Exported()).Where(u => !plugged.Contains(u)).Distinct(StringComparer.Ordinal).ToList())
        {
            await ReleaseAsync(srUuid, status, cancellationToken);
        }
    }

    private async Task<bool> ReleaseAsync(string srUuid, SanlockStatus status, CancellationToken cancellationToken)
    {
        if (status.Leases.FirstOrDefault(l => l.Lockspace == srUuid) is { } held)
        {
            logger.LogWarning(KeptInUse, "The VM leases of SR {Sr} stay joined: process {Pid} of this host holds the lease {Lease} in them", srUuid, held.Pid, held.Resource);
            return false;
        }

        if (_joins.TryGetValue(srUuid, out var join) && !(join.IsValueCreated && join.Value.IsCompleted))
        {
            return false;
        }

        foreach (var lockspace in status.Lockspaces.Where(l => l.Name == srUuid && IsOurs(l)))
        {
            if (lockspace.Transition is not null)
            {
                return false; // being added or removed: looked at again next time
            }

            var removed = await sanlock.RemoveLockspaceAsync(srUuid, lockspace.HostId, lockspace.Path, cancellationToken);
            if (!removed.Succeeded && removed.Code != NotThere)
            {
                logger.LogWarning(KeptInUse, "sanlock could not leave the VM leases of SR {Sr}: {Output}", srUuid, removed.Output.Trim());
                return false;
            }
        }

        _joins.TryRemove(srUuid, out _);
        _published.TryRemove(srUuid, out _);
        _checked.TryRemove(srUuid, out _);
        await database.Leases.DeleteIfValueAsync(JoinedKey(identity.Ref, srUuid), "joined", cancellationToken);
        var exported = volumes.IsExported(srUuid);
        if (exported)
        {
            await volumes.StopExportAsync(srUuid, cancellationToken);
        }

        logger.LogInformation(Left, "Left the VM leases of SR {Sr}, no longer plugged here{Export}", srUuid, exported ? ", and stopped its lease volume's export" : "");
        return true;
    }

    /// <summary>ENOENT: sanlock does not have the lockspace (already left).</summary>
    private const int NotThere = -2;

    /// <summary>
    /// A lockspace Corral joined: named after an SR, in a shared file SR's lease directory or this host's lease volume
    /// exports. Others the daemon has (another program's) are never touched.
    /// </summary>
    private bool IsOurs(JoinedLockspace lockspace) =>
        Guid.TryParse(lockspace.Name, out _)
        && (lockspace.Path == volumes.ExportPath(lockspace.Name)
            || lockspace.Path.EndsWith($"/{DirectoryName}/{lockspace.Name}/lockspace", StringComparison.Ordinal));
}
