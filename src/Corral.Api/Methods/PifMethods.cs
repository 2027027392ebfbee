using Corral.Api.Dispatch;
using Corral.Api.Operations;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Api.Methods;

/// <summary>
/// <c>PIF.scan</c> (the host concerned reads its network cards again and introduces a PIF for each new one, as xapi's
/// scan does) and <c>PIF.forget</c> (the record goes, the card is left as it is; a later scan finds it again), with
/// xapi's checks: a host that is down cannot scan (HOST_OFFLINE), the management interface cannot be forgotten
/// (PIF_IS_MANAGEMENT_IFACE), nor a card under a VLAN (PIF_VLAN_STILL_EXISTS).
/// </summary>
public sealed class PifMethods(IPoolDatabase database, Placement placement, HostOperationQueue operations) : IApiMethodProvider
{
    public void Register(ApiRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        registry.Implement("PIF.scan", async (ctx, a, ct) =>
        {
            var host = await database.GetArgumentAsync(XenClasses.Host, (string)a[0]!, ct);
            if (!await placement.IsLiveAsync(host, ct))
            {
                throw new XenApiException(ErrorCodes.HostOffline, host.Ref);
            }

            await operations.RunAsync(HostOperationKinds.PifScan, host.Ref, host.Ref, new Dictionary<string, string>(), ctx, ct);
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
}
