using Corral.Api.Dispatch;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Api.Methods;

/// <summary>Pool-level recovery messages: designate a new master, reset a dead host's VM.</summary>
public sealed class PoolMethods(IPoolDatabase database, Placement placement) : IApiMethodProvider
{
    public const string MasterKey = PoolKeys.Root + "master";
    public const string DesignatedKey = PoolKeys.Root + "master-designated";

    public void Register(ApiRegistry registry)
    {
        registry.Add("pool.designate_new_master", async (_, a, ct) =>
        {
            var hostRef = (string)a[0]!;
            var host = await database.GetArgumentAsync(XenClasses.Host, hostRef, ct);
            if (!await placement.IsLiveAsync(host, ct))
            {
                throw new XenApiException(ErrorCodes.HostOffline, hostRef);
            }

            // The successor gets a head start; the current master steps down by releasing the key it holds.
            await database.Leases.PutDurableAsync(DesignatedKey, hostRef, ct);
            var current = await database.Leases.GetValueAsync(MasterKey, ct);
            if (current is not null && current != hostRef)
            {
                await database.Leases.DeleteIfValueAsync(MasterKey, current, ct);
            }

            return null;
        }, ("host", FieldType.String));

        registry.Add("VM.power_state_reset", async (_, a, ct) =>
        {
            var vmRef = (string)a[0]!;
            var vm = await database.GetArgumentAsync(XenClasses.VM, vmRef, ct);
            var hostRef = vm.Get(XenApi.VM.ResidentOn);
            if (await database.TryGetAsync(XenClasses.Host, hostRef, ct) is { } host && await placement.IsLiveAsync(host, ct))
            {
                // While the host lives, its QEMU may still run the VM: declaring it halted could start a second copy.
                throw new XenApiException("HOST_IS_LIVE", hostRef);
            }

            await database.UpdateAsync([(XenClasses.VM, vmRef)], (objs, tx) => tx.Update(VmPowerStates.DeclaredHalted(objs[0])), ct);
            foreach (var (cls, field) in new[] { (XenClasses.VBD, "VBDs"), (XenClasses.VIF, "VIFs") })
            {
                foreach (var r in vm.GetSet(field))
                {
                    await database.UpdateAsync([(cls, r)], (objs, tx) =>
                    {
                        var o = objs[0].Clone();
                        o["currently_attached"] = false;
                        tx.Update(o);
                    }, ct);
                }
            }

            return null;
        }, ("vm", FieldType.String));
    }
}
