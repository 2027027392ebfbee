using System.Globalization;
using Corral.Api.Devices;
using Corral.Api.Dispatch;
using Corral.Api.Operations;
using Corral.Model;
using Corral.Networking;
using Corral.PoolDatabase;

namespace Corral.Api.Methods;

/// <summary>
/// VIF messages: create and destroy (records, in any power state, as xapi), and plug, unplug and unplug_force on a
/// running VM (hot-plug, run by the VM's host); <c>VM.get_allowed_VIF_devices</c>.
/// </summary>
public sealed class VifMethods(IPoolDatabase database, DeviceOperations devices) : IApiMethodProvider
{
    private static readonly SemaphoreSlim CreateLock = new(1, 1);

    public void Register(ApiRegistry registry)
    {
        registry.Implement("VIF.create", (_, a, ct) => CreateAsync((Dictionary<string, object?>)a[0]!, ct));
        registry.Implement("VIF.destroy", (_, a, ct) => DestroyAsync((string)a[0]!, ct));
        registry.Implement("VIF.plug", (ctx, a, ct) => HotplugAsync(ctx, (string)a[0]!, HotplugRules.Plug, ct));
        registry.Implement("VIF.unplug", (ctx, a, ct) => HotplugAsync(ctx, (string)a[0]!, HotplugRules.Unplug, ct));
        registry.Implement("VIF.unplug_force", (ctx, a, ct) => HotplugAsync(ctx, (string)a[0]!, HotplugRules.UnplugForce, ct));
        registry.Implement("VM.get_allowed_VIF_devices", async (_, a, ct) =>
        {
            var vm = await database.GetArgumentAsync(XenClasses.VM, (string)a[0]!, ct).ConfigureAwait(false);
            return DeviceNumbers.AllowedVifDevices(await DevicesOfAsync(vm, ct).ConfigureAwait(false)).Select(d => (object?)d).ToList();
        });
    }

    private async Task<IReadOnlyList<string>> DevicesOfAsync(XenObject vm, CancellationToken cancellationToken)
    {
        var devices = new List<string>();
        foreach (var vifRef in vm.Get(XenApi.VM.VIFs))
        {
            if (await database.TryGetAsync(XenClasses.VIF, vifRef, cancellationToken).ConfigureAwait(false) is { } vif)
            {
                devices.Add(vif.Get(XenApi.VIF.Device));
            }
        }

        return devices;
    }

    private async Task<object?> HotplugAsync(CallContext context, string vifRef, string operation, CancellationToken cancellationToken)
    {
        var vif = await database.GetArgumentAsync(XenClasses.VIF, vifRef, cancellationToken).ConfigureAwait(false);
        var vm = await database.GetAsync(XenClasses.VM, vif.Get(XenApi.VIF.VM), cancellationToken).ConfigureAwait(false);
        var metrics = await database.TryGetAsync(XenClasses.VMGuestMetrics, vm.Get(XenApi.VM.GuestMetrics), cancellationToken).ConfigureAwait(false);
        if (HotplugRules.CheckVif(operation, vif, vm, metrics) is { } refused)
        {
            throw refused;
        }

        var kind = operation == HotplugRules.Plug ? HostOperationKinds.VifPlug : HostOperationKinds.VifUnplug;
        await devices.RunAsync(context, kind, vm, "vif", vif.Ref, operation == HotplugRules.UnplugForce, cancellationToken).ConfigureAwait(false);
        return null;
    }

    /// <summary>
    /// xapi's VIF.create: in any power state (a running VM's new VIF is created unplugged; VIF.plug attaches it); the
    /// device an unsigned number no other VIF of the VM has; a MAC made up when none is given.
    /// </summary>
    private async Task<object?> CreateAsync(Dictionary<string, object?> record, CancellationToken cancellationToken)
    {
        var vm = await database.GetArgumentAsync(XenClasses.VM, record.GetValueOrDefault("VM")?.ToString() ?? "", cancellationToken).ConfigureAwait(false);
        var network = await database.GetArgumentAsync(XenClasses.Network, record.GetValueOrDefault("network")?.ToString() ?? "", cancellationToken)
            .ConfigureAwait(false);
        var device = record.GetValueOrDefault("device")?.ToString() ?? "";
        if (!uint.TryParse(device, NumberStyles.None, CultureInfo.InvariantCulture, out var number))
        {
            throw new XenApiException(ErrorCodes.InvalidDevice, device);
        }

        var mac = record.GetValueOrDefault("MAC")?.ToString() ?? "";
        var generated = mac.Length == 0;
        mac = generated ? MacAddress.NewRandom() : mac.ToLowerInvariant();
        if (!MacAddress.IsValid(mac))
        {
            throw new XenApiException(ErrorCodes.MacInvalid, mac);
        }

        await CreateLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            foreach (var other in await DevicesOfAsync(vm, cancellationToken).ConfigureAwait(false))
            {
                if (uint.TryParse(other, NumberStyles.None, CultureInfo.InvariantCulture, out var taken) && taken == number)
                {
                    throw new XenApiException(ErrorCodes.DeviceAlreadyExists, device);
                }
            }

            var tx = new PoolTransaction();
            var vif = tx.Create(XenClasses.VIFSchema);
            vif.Set(XenApi.VIF.VM, vm.Ref);
            vif.Set(XenApi.VIF.Network, network.Ref);
            vif.Set(XenApi.VIF.Device, number.ToString(CultureInfo.InvariantCulture));
            vif.Set(XenApi.VIF.MAC, mac);
            vif.Set(XenApi.VIF.MACAutogenerated, generated);
            vif.Set(XenApi.VIF.MTU, ConstructorRecord.Value(record, vif.Schema, XenApi.VIF.MTU, network.Get(XenApi.Network.MTU)));
            vif.Set(XenApi.VIF.OtherConfig, ConstructorRecord.Value(record, vif.Schema, XenApi.VIF.OtherConfig, new Dictionary<string, string>()));
            vif.Set(XenApi.VIF.QosAlgorithmType, ConstructorRecord.Value(record, vif.Schema, XenApi.VIF.QosAlgorithmType, ""));
            vif.Set(XenApi.VIF.QosAlgorithmParams, ConstructorRecord.Value(record, vif.Schema, XenApi.VIF.QosAlgorithmParams, new Dictionary<string, string>()));
            await database.CommitAsync(tx, cancellationToken).ConfigureAwait(false);
            return vif.Ref;
        }
        finally
        {
            CreateLock.Release();
        }
    }

    private async Task<object?> DestroyAsync(string vifRef, CancellationToken cancellationToken)
    {
        var vif = await database.GetArgumentAsync(XenClasses.VIF, vifRef, cancellationToken).ConfigureAwait(false);
        var vm = await database.TryGetAsync(XenClasses.VM, vif.Get(XenApi.VIF.VM), cancellationToken).ConfigureAwait(false);
        if (vif.Get(XenApi.VIF.CurrentlyAttached) && vm?.Get(XenApi.VM.PowerState) is VmPowerState.Running or VmPowerState.Paused)
        {
            throw new XenApiException(ErrorCodes.OperationNotAllowed, "VIF currently attached to a running VM");
        }

        var tx = new PoolTransaction();
        tx.Delete(vif);
        await database.CommitAsync(tx, cancellationToken).ConfigureAwait(false);
        return null;
    }
}
