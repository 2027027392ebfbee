using Corral.Api.Dispatch;
using Corral.Api.Operations;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Api.Methods;

/// <summary>
/// The PIF messages, as xapi's: <c>scan</c> (the host concerned reads its network cards again and introduces a PIF for
/// each new one), <c>introduce</c> (one named link), <c>plug</c>/<c>unplug</c> (the card's link up or down, on its
/// host), <c>set_disallow_unplug</c>, and <c>forget</c> (the record goes, the card is left as it is; a later scan
/// finds it again). xapi's checks: a host that is down answers nothing (HOST_OFFLINE); the management interface is
/// neither unplugged nor forgotten (PIF_IS_MANAGEMENT_IFACE); a card under a VLAN is not forgotten
/// (PIF_VLAN_STILL_EXISTS); a card a running VM of its host uses is not unplugged (VIF_IN_USE), nor one marked
/// disallow-unplug (PIF_DOES_NOT_ALLOW_UNPLUG); an unmanaged PIF is not plugged or unplugged (PIF_UNMANAGED).
/// </summary>
public sealed class PifMethods(IPoolDatabase database, Placement placement, HostOperationQueue operations) : IApiMethodProvider
{
    public void Register(ApiRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        registry.Implement("PIF.scan", async (ctx, a, ct) =>
        {
            var host = await LiveHostAsync((string)a[0]!, ct);
            await operations.RunAsync(HostOperationKinds.PifScan, host.Ref, host.Ref, new Dictionary<string, string>(), ctx, ct);
            return null;
        });
        registry.Implement("PIF.introduce", async (ctx, a, ct) =>
        {
            var host = await LiveHostAsync((string)a[0]!, ct);
            var mac = (string)a[1]!;
            if (mac.Length > 0 && !IsMac(mac))
            {
                throw new XenApiException("MAC_INVALID", mac);
            }

            return await operations.RunAsync(HostOperationKinds.PifIntroduce, host.Ref, host.Ref, new Dictionary<string, string>
            {
                ["mac"] = mac, ["device"] = (string)a[2]!, ["managed"] = (bool)a[3]! ? "true" : "false",
            }, ctx, ct);
        });
        registry.Implement("PIF.plug", async (ctx, a, ct) =>
        {
            var pif = await ManagedAsync((string)a[0]!, ct);
            await SetLinkAsync(ctx, pif, HostOperationKinds.PifPlug, ct);
            return null;
        });
        registry.Implement("PIF.unplug", async (ctx, a, ct) =>
        {
            var pif = await ManagedAsync((string)a[0]!, ct);
            if (pif.Get(XenApi.PIF.Management))
            {
                throw new XenApiException("PIF_IS_MANAGEMENT_IFACE", pif.Ref);
            }

            await AssertNoVifInUseAsync(pif, ct);
            if (pif.Get(XenApi.PIF.DisallowUnplug))
            {
                throw new XenApiException("PIF_DOES_NOT_ALLOW_UNPLUG", pif.Ref);
            }

            await SetLinkAsync(ctx, pif, HostOperationKinds.PifUnplug, ct);
            return null;
        });
        registry.Implement("PIF.set_disallow_unplug", async (_, a, ct) =>
        {
            await database.UpdateAsync([(XenClasses.PIF, (string)a[0]!)], (objs, tx) =>
            {
                var pif = objs[0].Clone();
                pif.Set(XenApi.PIF.DisallowUnplug, (bool)a[1]!);
                tx.Update(pif);
            }, ct);
            return null;
        });
        registry.Implement("PIF.forget", async (_, a, ct) =>
        {
            var pif = await database.GetArgumentAsync(XenClasses.PIF, (string)a[0]!, ct);
            if (pif.Get(XenApi.PIF.Management))
            {
                throw new XenApiException("PIF_IS_MANAGEMENT_IFACE", pif.Ref);
            }

            if (pif.Get(XenApi.PIF.VLANSlaveOf).Count > 0)
            {
                throw new XenApiException("PIF_VLAN_STILL_EXISTS", pif.Ref);
            }

            var tx = new PoolTransaction();
            tx.Delete(pif);
            if (await database.TryGetAsync(XenApi.PIFMetrics.ClassName, pif.Get(XenApi.PIF.Metrics), ct) is { } metrics)
            {
                tx.Delete(metrics);
            }

            await database.CommitAsync(tx, ct);
            return null;
        });
    }

    private async Task<XenObject> LiveHostAsync(string hostRef, CancellationToken cancellationToken)
    {
        return await placement.RequireLiveAsync(await database.GetArgumentAsync(XenClasses.Host, hostRef, cancellationToken), cancellationToken);
    }

    /// <summary>The PIF, which Corral must manage to plug or unplug it (PIF_UNMANAGED otherwise, as xapi's).</summary>
    private async Task<XenObject> ManagedAsync(string pifRef, CancellationToken cancellationToken)
    {
        var pif = await database.GetArgumentAsync(XenClasses.PIF, pifRef, cancellationToken);
        return pif.Get(XenApi.PIF.Managed) ? pif : throw new XenApiException("PIF_UNMANAGED", pif.Ref);
    }

    private async Task SetLinkAsync(CallContext context, XenObject pif, string kind, CancellationToken cancellationToken)
    {
        var host = await LiveHostAsync(pif.Get(XenApi.PIF.Host), cancellationToken);
        await operations.RunAsync(kind, host.Ref, pif.Ref, new Dictionary<string, string> { ["device"] = pif.Get(XenApi.PIF.Device) }, context, cancellationToken);
    }

    /// <summary>VIF_IN_USE when a VM running on the PIF's host has a VIF on its network, as xapi's unplug refuses.</summary>
    private async Task AssertNoVifInUseAsync(XenObject pif, CancellationToken cancellationToken)
    {
        var network = await database.GetAsync(XenClasses.Network, pif.Get(XenApi.PIF.Network), cancellationToken);
        foreach (var vifRef in network.Get(XenApi.Network.VIFs))
        {
            if (await database.TryGetAsync(XenClasses.VIF, vifRef, cancellationToken) is { } vif
                && await database.TryGetAsync(XenClasses.VM, vif.Get(XenApi.VIF.VM), cancellationToken) is { } vm
                && vm.Get(XenApi.VM.ResidentOn) == pif.Get(XenApi.PIF.Host) && vm.Get(XenApi.VM.PowerState) != VmPowerState.Halted)
            {
                throw new XenApiException("VIF_IN_USE", network.Ref, vif.Ref);
            }
        }
    }

    private static bool IsMac(string mac) =>
        mac.Length == 17 && mac.Split(':') is { Length: 6 } parts && parts.All(p => p.Length == 2 && p.All(char.IsAsciiHexDigit));
}
