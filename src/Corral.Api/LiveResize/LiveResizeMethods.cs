using System.Globalization;
using Corral.Api.AllowedOperations;
using Corral.Api.Dispatch;
using Corral.Api.Methods;
using Corral.Api.Operations;
using Corral.Model;
using Corral.PoolDatabase;
using Corral.Storage;

namespace Corral.Api.LiveResize;

/// <summary>
/// Live resize, as xapi's message forwarding does it: the VM is marked with the operation (its rules checked: a running
/// VM, nothing else in progress), the pool database takes the new settings, and the VM's host changes the running
/// guest (<see cref="HostOperationKinds.VmSetVcpusLive"/>, <see cref="HostOperationKinds.VmSetMemoryLive"/>,
/// <see cref="HostOperationKinds.VdiResizeOnline"/>). A halted VM's dynamic range is only recorded.
/// </summary>
public sealed class LiveResizeMethods(IPoolDatabase database, Placement placement, HostOperationQueue operations, OperationMarks marks, SrDrivers drivers)
    : IApiMethodProvider
{
    private static readonly FieldType Ref = FieldType.String;
    private ApiRegistry? _registry;

    public void Register(ApiRegistry registry)
    {
        _registry = registry;
        registry.Add("VM.set_VCPUs_number_live", (ctx, a, ct) => SetVcpusAsync(ctx, (string)a[0]!, (long)a[1]!, ct), ("self", Ref), ("nvcpu", FieldType.Int));
        registry.Add("VM.set_memory_dynamic_range", (ctx, a, ct) => SetDynamicRangeAsync(ctx, (string)a[0]!, (long)a[1]!, (long)a[2]!, ct),
            ("self", Ref), ("min", FieldType.Int), ("max", FieldType.Int));
        // xapi turns these into set_memory_dynamic_range with the other bound as it is.
        registry.Add("VM.set_memory_dynamic_max", async (ctx, a, ct) =>
            await SetDynamicRangeAsync(ctx, (string)a[0]!, (await GetVmAsync((string)a[0]!, ct)).Get(XenApi.VM.MemoryDynamicMin), (long)a[1]!, ct),
            ("self", Ref), ("value", FieldType.Int));
        registry.Add("VM.set_memory_dynamic_min", async (ctx, a, ct) =>
            await SetDynamicRangeAsync(ctx, (string)a[0]!, (long)a[1]!, (await GetVmAsync((string)a[0]!, ct)).Get(XenApi.VM.MemoryDynamicMax), ct),
            ("self", Ref), ("value", FieldType.Int));
        registry.Add("VM.set_memory_target_live", (ctx, a, ct) => SetTargetAsync(ctx, (string)a[0]!, (long)a[1]!, ct), ("self", Ref), ("target", FieldType.Int));
        // The datamodel file of the pinned xapi commit marks resize_online removed, while xapi's own IDL at that commit
        // (ocaml/idl/datamodel.ml) has it again: served, as xapi serves it.
        registry.Revive("VDI.resize_online", (ctx, a, ct) => ResizeOnlineAsync(ctx, (string)a[0]!, (long)a[1]!, ct));
    }

    private Task<XenObject> GetVmAsync(string vmRef, CancellationToken cancellationToken) => database.GetArgumentAsync(XenClasses.VM, vmRef, cancellationToken);

    private async Task<object?> SetVcpusAsync(CallContext context, string vmRef, long nvcpu, CancellationToken cancellationToken)
    {
        await using var mark = await marks.MarkVmAsync(context, vmRef, VmOperations.ChangingVCPUsLive, cancellationToken);
        var vm = await GetVmAsync(vmRef, cancellationToken);
        LiveResizeRules.CheckVcpus(nvcpu, vm.Get(XenApi.VM.VCPUsMax));
        await OnResidentHostAsync(context, vm, HostOperationKinds.VmSetVcpusLive, vmRef, Argument("nvcpu", nvcpu), mark, cancellationToken);
        return null;
    }

    private async Task<object?> SetDynamicRangeAsync(CallContext context, string vmRef, long min, long max, CancellationToken cancellationToken)
    {
        // The range is checked and recorded in the write that marks the VM (target = min, as xapi keeps it).
        await using var mark = await marks.MarkVmAsync(context, vmRef, VmOperations.ChangingDynamicRange, cancellationToken, alsoChange: v =>
        {
            LiveResizeRules.CheckDynamicRange(v.Get(XenApi.VM.MemoryStaticMin), min, max, v.Get(XenApi.VM.MemoryStaticMax));
            v.Set(XenApi.VM.MemoryDynamicMin, min);
            v.Set(XenApi.VM.MemoryDynamicMax, max);
            v.Set(XenApi.VM.MemoryTarget, min);
        });
        var vm = await GetVmAsync(vmRef, cancellationToken);
        // A control domain's record is only recorded (it is no QEMU of Corral's).
        if (vm.Get(XenApi.VM.PowerState) == VmPowerState.Running && !vm.Get(XenApi.VM.IsControlDomain))
        {
            await OnResidentHostAsync(context, vm, HostOperationKinds.VmSetMemoryLive, vmRef,
                Argument("target", LiveResizeRules.BalloonTarget(min, max)), mark, cancellationToken);
        }

        return null;
    }

    /// <summary>
    /// The deprecated direct target: xapi accepts and ignores it; Corral sets the balloon to it, within the dynamic range,
    /// which is what the message says it does.
    /// </summary>
    private async Task<object?> SetTargetAsync(CallContext context, string vmRef, long target, CancellationToken cancellationToken)
    {
        await using var mark = await marks.MarkVmAsync(context, vmRef, VmOperations.ChangingMemoryLive, cancellationToken, alsoChange: v =>
        {
            LiveResizeRules.CheckTarget(target, v.Get(XenApi.VM.MemoryDynamicMin), v.Get(XenApi.VM.MemoryDynamicMax));
            v.Set(XenApi.VM.MemoryTarget, target);
        });
        var vm = await GetVmAsync(vmRef, cancellationToken);
        await OnResidentHostAsync(context, vm, HostOperationKinds.VmSetMemoryLive, vmRef, Argument("target", target), mark, cancellationToken);
        return null;
    }

    /// <summary>
    /// xapi's resize_online takes the storage's resize path, the VDI attached or not; here a VDI a running VM has open
    /// grows in that VM's QEMU, on its host, so the guest sees it at once; one not in use is resized as VDI.resize does.
    /// </summary>
    private async Task<object?> ResizeOnlineAsync(CallContext context, string vdiRef, long size, CancellationToken cancellationToken)
    {
        var vdi = await database.GetArgumentAsync(XenClasses.VDI, vdiRef, cancellationToken);
        var sr = await database.GetAsync(XenClasses.SR, vdi.Get(XenApi.VDI.SR), cancellationToken);
        if (drivers.Find(sr.Get(XenApi.SR.Type))?.Features.Contains("VDI_RESIZE_ONLINE") != true)
        {
            throw new XenApiException(ErrorCodes.SrOperationNotSupported, sr.Ref);
        }

        LiveResizeRules.CheckResize(vdi.Ref, vdi.Get(XenApi.VDI.VirtualSize), size);
        if (await RunningVmOfAsync(vdi, cancellationToken) is not { } vm)
        {
            var offline = _registry?.Find("VDI.resize")?.Handler ?? throw new XenApiException(ErrorCodes.VdiNotAvailable, vdi.Ref);
            return await offline(context, [vdiRef, size], cancellationToken);
        }

        var arguments = Argument("size", size);
        arguments["vm"] = vm.Ref;
        await OnResidentHostAsync(context, vm, HostOperationKinds.VdiResizeOnline, vdiRef, arguments, null, cancellationToken);
        return null;
    }

    /// <summary>The VM that has the VDI plugged (a VBD currently attached), if it runs.</summary>
    private async Task<XenObject?> RunningVmOfAsync(XenObject vdi, CancellationToken cancellationToken)
    {
        foreach (var vbdRef in vdi.Get(XenApi.VDI.VBDs))
        {
            if (await database.TryGetAsync(XenClasses.VBD, vbdRef, cancellationToken) is { } vbd && vbd.Get(XenApi.VBD.CurrentlyAttached)
                && await database.TryGetAsync(XenClasses.VM, vbd.Get(XenApi.VBD.VM), cancellationToken) is { } vm
                && vm.Get(XenApi.VM.PowerState) is VmPowerState.Running or VmPowerState.Paused)
            {
                return vm;
            }
        }

        return null;
    }

    private static Dictionary<string, string> Argument(string name, long value) =>
        new() { [name] = value.ToString(CultureInfo.InvariantCulture) };

    /// <summary>Runs the change on the host the VM runs on, which must be live.</summary>
    private async Task OnResidentHostAsync(CallContext context, XenObject vm, string kind, string target, Dictionary<string, string> arguments,
        OperationMark? mark, CancellationToken cancellationToken)
    {
        var hostRef = vm.Get(XenApi.VM.ResidentOn);
        var host = await database.TryGetAsync(XenClasses.Host, hostRef, cancellationToken);
        if (host is null || !await placement.IsLiveAsync(host, cancellationToken))
        {
            throw new XenApiException(ErrorCodes.HostOffline, hostRef);
        }

        await operations.RunAsync(kind, hostRef, target, arguments, context, cancellationToken, mark);
    }
}
