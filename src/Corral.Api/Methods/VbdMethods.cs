using System.Globalization;
using Corral.Api.Devices;
using Corral.Api.Dispatch;
using Corral.Api.Operations;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Api.Methods;

/// <summary>
/// VBD messages: create and destroy (records, in any power state, as xapi), CD insert and eject, and plug, unplug and
/// unplug_force on a running VM (hot-plug, run by the VM's host); <c>VM.get_allowed_VBD_devices</c>.
/// </summary>
public sealed class VbdMethods(IPoolDatabase database, HostOperationQueue operations, DeviceOperations devices) : IApiMethodProvider
{
    /// <summary>The VDI types a VBD may point at (xapi refuses the HA statefile, redo log and CBT metadata).</summary>
    private static readonly VdiType[] AttachableTypes =
        [VdiType.System, VdiType.User, VdiType.Ephemeral, VdiType.Suspend, VdiType.Crashdump, VdiType.Metadata, VdiType.Rrd, VdiType.PvsCache];

    private static readonly SemaphoreSlim CreateLock = new(1, 1);

    public void Register(ApiRegistry registry)
    {
        registry.Implement("VBD.create", (_, a, ct) => CreateAsync((Dictionary<string, object?>)a[0]!, ct));
        registry.Implement("VBD.destroy", (_, a, ct) => DestroyAsync((string)a[0]!, ct));
        registry.Implement("VBD.insert", (ctx, a, ct) => ChangeMediumAsync(ctx, (string)a[0]!, (string)a[1]!, ct));
        registry.Implement("VBD.eject", (ctx, a, ct) => ChangeMediumAsync(ctx, (string)a[0]!, null, ct));
        registry.Implement("VBD.plug", (ctx, a, ct) => HotplugAsync(ctx, (string)a[0]!, HotplugRules.Plug, ct));
        registry.Implement("VBD.unplug", (ctx, a, ct) => HotplugAsync(ctx, (string)a[0]!, HotplugRules.Unplug, ct));
        registry.Implement("VBD.unplug_force", (ctx, a, ct) => HotplugAsync(ctx, (string)a[0]!, HotplugRules.UnplugForce, ct));
        registry.Implement("VBD.set_mode", async (_, a, ct) =>
        {
            var vbd = await database.GetArgumentAsync(XenClasses.VBD, (string)a[0]!, ct);
            VmPowerStates.Require(await database.GetAsync(XenClasses.VM, vbd.Get(XenApi.VBD.VM), ct), VmPowerState.Halted);
            await database.UpdateAsync([(XenClasses.VBD, vbd.Ref)], (objs, tx) =>
            {
                var v = objs[0].Clone();
                v.Set(XenApi.VBD.Mode, XenApi.VBD.Mode.Read(a[1]));
                tx.Update(v);
            }, ct);
            return null;
        });
        registry.Implement("VM.get_allowed_VBD_devices", async (_, a, ct) =>
        {
            var vm = await database.GetArgumentAsync(XenClasses.VM, (string)a[0]!, ct);
            return DeviceNumbers.AllowedVbdDevices(await UsedAsync(vm, ct)).Select(d => (object?)d).ToList();
        });
    }

    private async Task<IReadOnlyList<(string Device, string Userdevice)>> UsedAsync(XenObject vm, CancellationToken cancellationToken)
    {
        var used = new List<(string, string)>();
        foreach (var vbdRef in vm.Get(XenApi.VM.VBDs))
        {
            if (await database.TryGetAsync(XenClasses.VBD, vbdRef, cancellationToken) is { } vbd)
            {
                used.Add((vbd.Get(XenApi.VBD.Device), vbd.Get(XenApi.VBD.Userdevice)));
            }
        }

        return used;
    }

    private async Task<object?> HotplugAsync(CallContext context, string vbdRef, string operation, CancellationToken cancellationToken)
    {
        var vbd = await database.GetArgumentAsync(XenClasses.VBD, vbdRef, cancellationToken);
        var vm = await database.GetAsync(XenClasses.VM, vbd.Get(XenApi.VBD.VM), cancellationToken);
        var metrics = await database.TryGetAsync(XenClasses.VMGuestMetrics, vm.Get(XenApi.VM.GuestMetrics), cancellationToken);
        XenObject? vdi = null;
        var others = new List<(XenObject, XenObject)>();
        if (!vbd.Get(XenApi.VBD.Empty) && await database.TryGetAsync(XenClasses.VDI, vbd.Get(XenApi.VBD.VDI), cancellationToken) is { } found)
        {
            vdi = found;
            foreach (var otherRef in vdi.Get(XenApi.VDI.VBDs).Where(r => r != vbd.Ref))
            {
                if (await database.TryGetAsync(XenClasses.VBD, otherRef, cancellationToken) is { } other
                    && await database.TryGetAsync(XenClasses.VM, other.Get(XenApi.VBD.VM), cancellationToken) is { } otherVm)
                {
                    others.Add((other, otherVm));
                }
            }
        }

        if (HotplugRules.CheckVbd(operation, new VbdHotplugContext(vbd, vm, metrics, vdi, others)) is { } refused)
        {
            throw refused;
        }

        var kind = operation == HotplugRules.Plug ? HostOperationKinds.VbdPlug : HostOperationKinds.VbdUnplug;
        await devices.RunAsync(context, kind, vm, "vbd", vbd.Ref, operation == HotplugRules.UnplugForce, cancellationToken);
        return null;
    }

    /// <summary>
    /// xapi's VBD.create: in any power state (a running VM's new VBD is created unplugged; VBD.plug attaches it), refused
    /// while the VM migrates; <c>autodetect</c> takes the first free device; numbers and Linux names ("xvdb") that mean
    /// a device already used clash.
    /// </summary>
    private async Task<object?> CreateAsync(Dictionary<string, object?> record, CancellationToken cancellationToken)
    {
        var (vm, type, mode, empty, vdiRef) = await CheckCreateAsync(record, cancellationToken);
        DeviceOperations.RequireNotMigrating(vm);
        await CreateLock.WaitAsync(cancellationToken);
        try
        {
            var userdevice = await UserdeviceAsync(vm, record.GetValueOrDefault("userdevice")?.ToString() ?? "autodetect", type, cancellationToken);
            var tx = new PoolTransaction();
            var vbd = tx.Create(XenClasses.VBDSchema);
            vbd.Set(XenApi.VBD.VM, vm.Ref);
            vbd.Set(XenApi.VBD.VDI, vdiRef);
            vbd.Set(XenApi.VBD.Userdevice, userdevice);
            vbd.Set(XenApi.VBD.Bootable, ConstructorRecord.Value(record, vbd.Schema, XenApi.VBD.Bootable, false));
            vbd.Set(XenApi.VBD.Mode, XenApi.VBD.Mode.Read(mode));
            vbd.Set(XenApi.VBD.Type, XenApi.VBD.Type.Read(type));
            vbd.Set(XenApi.VBD.Empty, empty);
            vbd.Set(XenApi.VBD.Unpluggable, ConstructorRecord.Value(record, vbd.Schema, XenApi.VBD.Unpluggable, true));
            vbd.Set(XenApi.VBD.OtherConfig, ConstructorRecord.Value(record, vbd.Schema, XenApi.VBD.OtherConfig, new Dictionary<string, string>()));
            vbd.Set(XenApi.VBD.QosAlgorithmType, ConstructorRecord.Value(record, vbd.Schema, XenApi.VBD.QosAlgorithmType, ""));
            vbd.Set(XenApi.VBD.QosAlgorithmParams, ConstructorRecord.Value(record, vbd.Schema, XenApi.VBD.QosAlgorithmParams, new Dictionary<string, string>()));
            await database.CommitAsync(tx, cancellationToken);
            return vbd.Ref;
        }
        finally
        {
            CreateLock.Release();
        }
    }

    /// <summary>xapi's checks of a new VBD's record: its VM, type, mode, and VDI (none for an empty CD drive).</summary>
    private async Task<(XenObject Vm, string Type, string Mode, bool Empty, string VdiRef)> CheckCreateAsync(Dictionary<string, object?> record,
        CancellationToken cancellationToken)
    {
        var vm = await database.GetArgumentAsync(XenClasses.VM, record.GetValueOrDefault("VM")?.ToString() ?? "", cancellationToken);
        var type = (string)XenEnumTypes.VbdType.Coerce(record.GetValueOrDefault("type") ?? "Disk")!;
        var mode = (string)XenEnumTypes.VbdMode.Coerce(record.GetValueOrDefault("mode") ?? (type == "CD" ? "RO" : "RW"))!;
        var empty = record.GetValueOrDefault("empty") is { } e && (bool)FieldType.Bool.Coerce(e)!;
        var vdiRef = record.GetValueOrDefault("VDI")?.ToString() ?? OpaqueRef.Null;
        XenObject? vdi = null;
        if (OpaqueRef.IsNull(vdiRef) && type == "CD")
        {
            empty = true; // an empty CD drive, whatever "empty" said
        }
        else if (!empty)
        {
            vdi = await database.GetArgumentAsync(XenClasses.VDI, vdiRef, cancellationToken);
            if (!AttachableTypes.Contains(vdi.Get(XenApi.VDI.Type)))
            {
                throw new XenApiException(ErrorCodes.VdiIncompatibleType, vdi.Ref, vdi.GetString("type"));
            }
        }

        if (type == "CD" && mode != "RO")
        {
            throw new XenApiException(ErrorCodes.VbdCdsMustBeReadonly);
        }

        if (type != "CD" && empty)
        {
            throw new XenApiException(ErrorCodes.VbdNotRemovableMedia, "in constructor");
        }

        if (mode == "RW" && vdi?.Get(XenApi.VDI.ReadOnly) == true)
        {
            throw new XenApiException(ErrorCodes.VdiReadonly, vdi.Ref);
        }

        return (vm, type, mode, empty, empty ? OpaqueRef.Null : vdiRef);
    }

    /// <summary>The userdevice a new VBD gets: the first allowed device for <c>autodetect</c>, else the one asked for if it is free.</summary>
    private async Task<string> UserdeviceAsync(XenObject vm, string asked, string type, CancellationToken cancellationToken)
    {
        var used = await UsedAsync(vm, cancellationToken);
        if (asked is "autodetect" or "")
        {
            var allowed = DeviceNumbers.AllowedVbdDevices(used);
            return allowed.Count > 0 ? allowed[0] : throw new XenApiException(ErrorCodes.InvalidDevice, asked);
        }

        // A Linux name ("xvdb", "hdc") is kept as the disk number it stands for, the form the rest of Corral reads.
        if (type == "Floppy" || DeviceNumbers.DiskIndex(asked) is not { } index)
        {
            throw new XenApiException(ErrorCodes.InvalidDevice, asked);
        }

        if (DeviceNumbers.PossibleDevices(asked).Intersect(DeviceNumbers.Used(used)).Any())
        {
            throw new XenApiException(ErrorCodes.DeviceAlreadyExists, asked);
        }

        return index.ToString(CultureInfo.InvariantCulture);
    }

    private async Task<object?> DestroyAsync(string vbdRef, CancellationToken cancellationToken)
    {
        var vbd = await database.GetArgumentAsync(XenClasses.VBD, vbdRef, cancellationToken);
        if (vbd.Get(XenApi.VBD.CurrentlyAttached))
        {
            var vm = await database.TryGetAsync(XenClasses.VM, vbd.Get(XenApi.VBD.VM), cancellationToken);
            throw new XenApiException(ErrorCodes.OperationNotAllowed, $"VBD '{vbd.Uuid}' still attached to '{vm?.Uuid}'");
        }

        var tx = new PoolTransaction();
        tx.Delete(vbd);
        await database.CommitAsync(tx, cancellationToken);
        return null;
    }

    private async Task<object?> ChangeMediumAsync(CallContext context, string vbdRef, string? vdiRef, CancellationToken cancellationToken)
    {
        var vbd = await database.GetArgumentAsync(XenClasses.VBD, vbdRef, cancellationToken);
        if (vbd.Get(XenApi.VBD.Type) != VbdType.CD)
        {
            throw new XenApiException(ErrorCodes.VbdNotRemovableMedia, vbd.Ref);
        }

        if (vdiRef is not null)
        {
            if (!vbd.Get(XenApi.VBD.Empty))
            {
                throw new XenApiException(ErrorCodes.VbdNotEmpty, vbd.Ref);
            }

            await database.GetArgumentAsync(XenClasses.VDI, vdiRef, cancellationToken);
        }
        else if (vbd.Get(XenApi.VBD.Empty))
        {
            throw new XenApiException(ErrorCodes.VbdIsEmpty, vbd.Ref);
        }

        var vm = await database.GetAsync(XenClasses.VM, vbd.Get(XenApi.VBD.VM), cancellationToken);
        if (vm.Get(XenApi.VM.PowerState) is VmPowerState.Running or VmPowerState.Paused)
        {
            await operations.RunAsync(HostOperationKinds.VmChangeMedium, vm.Get(XenApi.VM.ResidentOn), vm.Ref,
                new Dictionary<string, string> { ["vbd"] = vbd.Ref, ["vdi"] = vdiRef ?? OpaqueRef.Null }, context, cancellationToken);
            return null;
        }

        await database.UpdateAsync([(XenClasses.VBD, vbd.Ref)], (objs, tx) =>
        {
            var v = objs[0].Clone();
            v.Set(XenApi.VBD.VDI, vdiRef ?? OpaqueRef.Null);
            v.Set(XenApi.VBD.Empty, vdiRef is null);
            tx.Update(v);
        }, cancellationToken);
        return null;
    }
}
