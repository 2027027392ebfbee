using System.Globalization;
using Corral.Agent.Hosting;
using Corral.Agent.Operations;
using Corral.Api.Devices;
using Corral.Api.Methods;
using Corral.Api.Migration;
using Corral.Api.Operations;
using Corral.Hypervisor;
using Corral.Model;
using Corral.Networking;
using Corral.PoolDatabase;
using Microsoft.Extensions.Options;

namespace Corral.Agent.Vms;

/// <summary>
/// VBD.plug/unplug and VIF.plug/unplug on the host running the VM: the device goes into or out of its QEMU process, and
/// the VBD or VIF records it. Each operation targets the VM, so the worker runs it after (never during) the VM's other
/// operations on this host; asked again after an agent restart it finds the device where the first attempt left it.
/// </summary>
public sealed class DeviceHotplugHandler(
    IPoolDatabase database,
    VmSupervisor supervisor,
    VmDevices devices,
    BridgeNetworking networking,
    HostIdentity identity,
    IOptions<AgentOptions> options,
    ILogger<DeviceHotplugHandler> logger) : IHostOperationHandler
{
    public IReadOnlyCollection<string> Kinds { get; } =
        [HostOperationKinds.VbdPlug, HostOperationKinds.VbdUnplug, HostOperationKinds.VifPlug, HostOperationKinds.VifUnplug];

    public async Task<string?> ExecuteAsync(HostOperation operation, OperationProgress progress, CancellationToken cancellationToken)
    {
        var vm = await database.GetAsync(XenClasses.VM, operation.Target, cancellationToken);
        await LiveVmChange.MakeAsync(vm, operation.Kind, identity, supervisor, database, logger, process => operation.Kind switch
        {
            HostOperationKinds.VbdPlug => PlugDiskAsync(vm, process, operation.Argument("vbd"), cancellationToken),
            HostOperationKinds.VbdUnplug => UnplugDiskAsync(process, operation.Argument("vbd"), cancellationToken),
            HostOperationKinds.VifPlug => PlugNicAsync(vm, process, operation.Argument("vif"), cancellationToken),
            HostOperationKinds.VifUnplug => UnplugNicAsync(vm, process, operation.Argument("vif"), cancellationToken),
            _ => throw new XenApiException(ErrorCodes.NotImplemented, operation.Kind),
        }, cancellationToken);
        return null;
    }

    private async Task PlugDiskAsync(XenObject vm, IVmProcess process, string vbdRef, CancellationToken cancellationToken)
    {
        var vbd = await database.GetAsync(XenClasses.VBD, vbdRef, cancellationToken);
        var disk = await devices.DiskAsync(vm, vbd, null, cancellationToken);
        var attached = await process.AttachDiskAsync(disk, cancellationToken);
        var name = vbd.Get(XenApi.VBD.CurrentlyAttached) ? null : await devices.NameForPluggedDiskAsync(vm, vbdRef, cancellationToken);
        await devices.RecordOneAsync(XenClasses.VBD, vbdRef, true, attached.PciSlot, name, cancellationToken);
        logger.LogInformation("VM {Vm}: VBD {Vbd} plugged as {Device}", vm.Get(XenApi.VM.NameLabel), vbd.Uuid, name);
    }

    private async Task UnplugDiskAsync(IVmProcess process, string vbdRef, CancellationToken cancellationToken)
    {
        var vbd = await database.GetAsync(XenClasses.VBD, vbdRef, cancellationToken);
        var userdevice = vbd.Get(XenApi.VBD.Userdevice);
        var index = DeviceNumbers.DiskIndex(userdevice) ?? throw new XenApiException(ErrorCodes.InvalidDevice, userdevice);
        if (!await process.DetachDiskAsync(index, options.Value.DeviceUnplugTimeout, cancellationToken))
        {
            // The request stays with the guest: if it lets go later, the supervisor records it then.
            throw new XenApiException(ErrorCodes.DeviceDetachRejected, XenClasses.VBD, vbdRef, "");
        }

        await devices.RecordOneAsync(XenClasses.VBD, vbdRef, false, null, null, cancellationToken);
    }

    private async Task PlugNicAsync(XenObject vm, IVmProcess process, string vifRef, CancellationToken cancellationToken)
    {
        var vif = await database.GetAsync(XenClasses.VIF, vifRef, cancellationToken);
        var nic = await devices.NicAsync(vif, vm.Get(XenApi.VM.Domid), cancellationToken);
        NicSpec attached;
        try
        {
            attached = await process.AttachNicAsync(nic, cancellationToken);
        }
        catch (DeviceHotplugException)
        {
            await networking.DeleteLinkAsync(nic.TapName, CancellationToken.None);
            throw;
        }

        await devices.RecordOneAsync(XenClasses.VIF, vifRef, true, attached.PciSlot, null, cancellationToken);
        logger.LogInformation("VM {Vm}: VIF {Vif} plugged on {Tap}", vm.Get(XenApi.VM.NameLabel), vif.Uuid, nic.TapName);
    }

    private async Task UnplugNicAsync(XenObject vm, IVmProcess process, string vifRef, CancellationToken cancellationToken)
    {
        var vif = await database.GetAsync(XenClasses.VIF, vifRef, cancellationToken);
        var device = vif.Get(XenApi.VIF.Device);
        var index = int.TryParse(device, NumberStyles.None, CultureInfo.InvariantCulture, out var i) ? i : throw new XenApiException(ErrorCodes.InvalidDevice, device);
        if (!await process.DetachNicAsync(index, options.Value.DeviceUnplugTimeout, cancellationToken))
        {
            throw new XenApiException(ErrorCodes.DeviceDetachRejected, XenClasses.VIF, vifRef, "");
        }

        await networking.DeleteLinkAsync(BridgeNetworking.TapName(vm.Get(XenApi.VM.Domid), device), cancellationToken);
        await devices.RecordOneAsync(XenClasses.VIF, vifRef, false, null, null, cancellationToken);
    }
}
