using Corral.Agent.Hosting;
using Corral.Api.Methods;
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

    /// <summary>
    /// Makes <paramref name="change"/> to the running VM's process here (<see cref="ProcessAsync"/>); a change QEMU or
    /// the guest refuses (<see cref="DeviceHotplugException"/>) is logged and answered OPERATION_NOT_ALLOWED.
    /// </summary>
    public static async Task MakeAsync(XenObject vm, string kind, HostIdentity identity, VmSupervisor supervisor, IPoolDatabase database, ILogger logger,
        Func<IVmProcess, Task> change, CancellationToken cancellationToken)
    {
        VmPowerStates.Require(vm, VmPowerState.Running);
        var process = await ProcessAsync(vm, identity, supervisor, database, cancellationToken);
        try
        {
            await change(process);
        }
        catch (DeviceHotplugException ex)
        {
            logger.LogWarning("{Kind} on VM {Vm} refused: {Reason}", kind, vm.Get(XenApi.VM.NameLabel), ex.Message);
            throw new XenApiException(ErrorCodes.OperationNotAllowed, ex.Message);
        }
    }
}
