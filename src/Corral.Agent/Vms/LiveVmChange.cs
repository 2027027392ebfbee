using Corral.Agent.Hosting;
using Corral.Api.Migration;
using Corral.Hypervisor;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Agent.Vms;

/// <summary>Where a change to a running VM (a device plugged, its size, a live snapshot) is made: its process here.</summary>
internal static class LiveVmChange
{
    /// <summary>
    /// The VM's process on this host. Refused when the VM is not this host's, and while it migrates: its devices and
    /// disks must stay as the destination was told until the migration ends.
    /// </summary>
    public static async Task<IVmProcess> ProcessAsync(XenObject vm, HostIdentity identity, VmSupervisor supervisor, IPoolDatabase database,
        CancellationToken cancellationToken)
    {
        if (vm.Get(XenApi.VM.ResidentOn) != identity.Ref || supervisor.Find(vm.Uuid) is not { } process)
        {
            throw new XenApiException(ErrorCodes.InternalError, $"the VM {vm.Ref} is not resident on this host");
        }

        if (await MigrationRecord.ReadAsync(database, vm.Ref, cancellationToken) is not null)
        {
            throw new XenApiException(ErrorCodes.OtherOperationInProgress, XenClasses.VM, vm.Ref);
        }

        return process;
    }
}
