using Corral.Api.Dispatch;
using Corral.Api.Methods;
using Corral.Api.Operations;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Api.Devices;

/// <summary>Hands a device plug or unplug to the host running the VM, as a persisted operation of that host.</summary>
public sealed class DeviceOperations(IPoolDatabase database, Placement placement, HostOperationQueue operations)
{
    /// <summary>Operations during which a VM's devices must stay as they are (xapi refuses VBD.create then too).</summary>
    private static readonly string[] Migrations = ["migrate_send", "pool_migrate"];

    /// <summary>OTHER_OPERATION_IN_PROGRESS ["VM", vm, operation, task] while the VM is being migrated.</summary>
    public static void RequireNotMigrating(XenObject vm)
    {
        if (vm.GetStringMap("current_operations").FirstOrDefault(o => Migrations.Contains(o.Value)) is { Key: { } task, Value: { } operation })
        {
            throw new XenApiException(ErrorCodes.OtherOperationInProgress, XenClasses.VM, vm.Ref, operation, task);
        }
    }

    /// <summary>Runs <paramref name="kind"/> on the VM's host for the device and waits for it.</summary>
    public async Task RunAsync(CallContext context, string kind, XenObject vm, string argument, string deviceRef, bool force, CancellationToken cancellationToken)
    {
        RequireNotMigrating(vm);
        var hostRef = vm.Get(XenApi.VM.ResidentOn);
        var host = await database.TryGetAsync(XenClasses.Host, hostRef, cancellationToken);
        if (host is null || !await placement.IsLiveAsync(host, cancellationToken))
        {
            throw new XenApiException(ErrorCodes.HostOffline, hostRef);
        }

        var arguments = new Dictionary<string, string> { [argument] = deviceRef };
        if (force)
        {
            arguments["force"] = "true";
        }

        await operations.RunAsync(kind, hostRef, vm.Ref, arguments, context, cancellationToken);
    }
}
