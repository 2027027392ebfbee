using System.Globalization;
using Corral.Agent.Hosting;
using Corral.Agent.Operations;
using Corral.Api.Devices;
using Corral.Api.Methods;
using Corral.Api.Migration;
using Corral.Api.Operations;
using Corral.Hypervisor;
using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.Extensions.Options;

namespace Corral.Agent.Vms;

/// <summary>
/// Live resize on the host running the VM (as xenopsd does it for xapi): <c>VM.set_VCPUs_number_live</c> plugs or
/// unplugs vCPUs and records the count in <c>VCPUs_at_startup</c> and <c>VM_metrics.VCPUs_number</c>;
/// <c>VM.set_memory_dynamic_range</c> on a running VM sets the balloon's target and records <c>memory_actual</c>;
/// <c>VDI.resize_online</c> grows the disk in the VM's QEMU (which resizes the image it has open) and records the
/// VDI's new size. Each targets the VM (the VDI's for a resize), so it runs after the VM's other operations here.
/// </summary>
public sealed class LiveResizeHandler(
    IPoolDatabase database,
    VmSupervisor supervisor,
    HostIdentity identity,
    IOptions<AgentOptions> options,
    ILogger<LiveResizeHandler> logger) : IHostOperationHandler
{
    /// <summary>xapi's tolerance when waiting for a guest to reach its memory target.</summary>
    private const long TargetTolerance = 1L << 20;

    /// <summary>How long a memory change waits for the guest's balloon before it records what the guest has so far.</summary>
    private static readonly TimeSpan BalloonPatience = TimeSpan.FromSeconds(20);

    public IReadOnlyCollection<string> Kinds { get; } =
        [HostOperationKinds.VmSetVcpusLive, HostOperationKinds.VmSetMemoryLive, HostOperationKinds.VdiResizeOnline];

    public async Task<string?> ExecuteAsync(HostOperation operation, OperationProgress progress, CancellationToken cancellationToken)
    {
        var vmRef = operation.Kind == HostOperationKinds.VdiResizeOnline ? operation.Argument("vm") : operation.Target;
        var vm = await database.GetAsync(XenClasses.VM, vmRef, cancellationToken);
        await LiveVmChange.MakeAsync(vm, operation.Kind, identity, supervisor, database, logger, process => operation.Kind switch
        {
            HostOperationKinds.VmSetVcpusLive => SetVcpusAsync(vm, process, Number(operation, "nvcpu"), cancellationToken),
            HostOperationKinds.VmSetMemoryLive => SetMemoryAsync(vm, process, Number(operation, "target"), cancellationToken),
            HostOperationKinds.VdiResizeOnline => ResizeDiskAsync(vm, process, operation.Target, Number(operation, "size"), cancellationToken),
            _ => throw new XenApiException(ErrorCodes.NotImplemented, operation.Kind),
        }, cancellationToken);
        return null;
    }

    private static long Number(HostOperation operation, string name) =>
        long.TryParse(operation.Argument(name), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n)
            ? n : throw new XenApiException(ErrorCodes.InvalidValue, name, operation.Argument(name));

    private async Task SetVcpusAsync(XenObject vm, IVmProcess process, long nvcpu, CancellationToken cancellationToken)
    {
        var now = await process.SetVcpusAsync((int)nvcpu, options.Value.DeviceUnplugTimeout, cancellationToken);
        // As xapi records xenopsd's answer: the count the VM has now is what it starts with next time.
        await database.UpdateAsync([(XenClasses.VM, vm.Ref)], (objs, tx) =>
        {
            var v = objs[0].Clone();
            v.Set(XenApi.VM.VCPUsAtStartup, (long)now);
            tx.Update(v);
        }, cancellationToken);
        await UpdateMetricsAsync(vm, m => m.Set(XenApi.VMMetrics.VCPUsNumber, (long)now), cancellationToken);
        logger.LogInformation("VM {Vm}: {Count} vCPUs", vm.Get(XenApi.VM.NameLabel), now);
        if (now != nvcpu)
        {
            throw new XenApiException(ErrorCodes.InternalError, $"the VM has {now} vCPUs, not the {nvcpu} asked for");
        }
    }

    private async Task SetMemoryAsync(XenObject vm, IVmProcess process, long target, CancellationToken cancellationToken)
    {
        await process.SetMemoryTargetAsync(target, cancellationToken);
        // The guest's driver gives or takes the memory at its own pace: wait a little for it (xapi's tolerance), then
        // record what it has; the target stays set either way.
        var actual = await process.QueryMemoryActualAsync(cancellationToken);
        var deadline = DateTime.UtcNow + BalloonPatience;
        while (actual is { } a && Math.Abs(a - target) > TargetTolerance && DateTime.UtcNow < deadline)
        {
            await Task.Delay(250, cancellationToken);
            actual = await process.QueryMemoryActualAsync(cancellationToken);
        }

        if (actual is { } reached)
        {
            await UpdateMetricsAsync(vm, m => m.Set(XenApi.VMMetrics.MemoryActual, reached), cancellationToken);
        }

        logger.LogInformation("VM {Vm}: memory target {Target} bytes, the guest has {Actual}", vm.Get(XenApi.VM.NameLabel), target, actual);
    }

    private async Task ResizeDiskAsync(XenObject vm, IVmProcess process, string vdiRef, long size, CancellationToken cancellationToken)
    {
        var vdi = await database.GetAsync(XenClasses.VDI, vdiRef, cancellationToken);
        int? index = null;
        foreach (var vbdRef in vdi.Get(XenApi.VDI.VBDs))
        {
            var vbd = await database.GetAsync(XenClasses.VBD, vbdRef, cancellationToken);
            if (vbd.Get(XenApi.VBD.VM) == vm.Ref && vbd.Get(XenApi.VBD.CurrentlyAttached))
            {
                index = DeviceNumbers.DiskIndex(vbd.Get(XenApi.VBD.Userdevice));
            }
        }

        var disk = index ?? throw new XenApiException(ErrorCodes.VdiNotAvailable, vdiRef);
        var now = await process.ResizeDiskAsync(disk, size, cancellationToken);
        await database.UpdateAsync([(XenClasses.VDI, vdiRef)], (objs, tx) =>
        {
            var v = objs[0].Clone();
            v.Set(XenApi.VDI.VirtualSize, now);
            tx.Update(v);
        }, cancellationToken);
        logger.LogInformation("VM {Vm}: disk {Index} (VDI {Vdi}) is now {Size} bytes", vm.Get(XenApi.VM.NameLabel), disk, vdi.Uuid, now);
    }

    private async Task UpdateMetricsAsync(XenObject vm, Action<XenObject> change, CancellationToken cancellationToken)
    {
        var metricsRef = vm.Get(XenApi.VM.Metrics);
        if (await database.TryGetAsync(XenClasses.VMMetrics, metricsRef, cancellationToken) is null)
        {
            return;
        }

        await database.UpdateAsync([(XenClasses.VMMetrics, metricsRef)], (objs, tx) =>
        {
            var m = objs[0].Clone();
            change(m);
            m.Set(XenApi.VMMetrics.LastUpdated, DateTime.UtcNow);
            tx.Update(m);
        }, cancellationToken);
    }
}
