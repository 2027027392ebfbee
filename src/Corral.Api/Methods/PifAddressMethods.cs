using System.Net;
using System.Net.Sockets;
using Corral.Api.Dispatch;
using Corral.Api.Operations;
using Corral.Model;
using Corral.Networking;
using Corral.PoolDatabase;

namespace Corral.Api.Methods;

/// <summary>
/// <c>PIF.reconfigure_ip</c>, as xapi's (xapi_pif.ml): the PIF's IPv4 configuration (None, DHCP, or Static with address,
/// netmask and gateway; its name servers recorded), applied on the PIF's host, which keeps it across restarts. xapi's
/// checks: PIF_UNMANAGED; HA_IS_ENABLED for an attached PIF while HA is on, unless a static configuration keeps its
/// address, netmask and gateway; INVALID_IP_ADDRESS_SPECIFIED (a static one needs an address and a netmask; what is
/// given must be IPv4, the netmask contiguous); PIF_IS_MANAGEMENT_IFACE for mode None on the management interface;
/// only the IPv4 name servers given are kept. The management interface's address is also its host's pool database
/// member's and certificate's: Corral refuses to change it (OPERATION_NOT_ALLOWED) rather than cut the host off.
/// </summary>
public sealed class PifAddressMethods(IPoolDatabase database, Placement placement, HostOperationQueue operations) : IApiMethodProvider
{
    public void Register(ApiRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        registry.Implement("PIF.reconfigure_ip", async (ctx, a, ct) =>
        {
            var pif = await database.GetArgumentAsync(XenClasses.PIF, (string)a[0]!, ct);
            var mode = XenApi.PIF.IpConfigurationMode.Read(a[1]);
            var (ip, netmask, gateway) = ((string)a[2]!, (string)a[3]!, (string)a[4]!);
            var dns = string.Join(',', ((string)a[5]!).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Where(s => IPAddress.TryParse(s, out var d) && d.AddressFamily == AddressFamily.InterNetwork));
            await AssertAllowedAsync(pif, mode, ip, netmask, gateway, ct);
            if (pif.Get(XenApi.PIF.Management))
            {
                AssertManagementUnchanged(pif, mode, ip, netmask, gateway, dns);
                return null;
            }

            var host = await placement.RequireLiveAsync(await database.GetArgumentAsync(XenClasses.Host, pif.Get(XenApi.PIF.Host), ct), ct);

            await operations.RunAsync(HostOperationKinds.PifReconfigureIp, host.Ref, pif.Ref, new Dictionary<string, string>
            {
                ["device"] = pif.Get(XenApi.PIF.Device), ["mode"] = mode.ToString(), ["IP"] = ip, ["netmask"] = netmask, ["gateway"] = gateway, ["DNS"] = dns,
            }, ctx, ct);
            return null;
        });
    }

    private async Task AssertAllowedAsync(XenObject pif, IpConfigurationMode mode, string ip, string netmask, string gateway, CancellationToken cancellationToken)
    {
        if (!pif.Get(XenApi.PIF.Managed))
        {
            throw new XenApiException("PIF_UNMANAGED", pif.Ref);
        }

        // A new address, netmask or gateway (or DHCP, which may bring one) risks the host's HA heartbeats.
        var keepsAddress = mode == IpConfigurationMode.Static && pif.Get(XenApi.PIF.IpConfigurationMode) == mode
                           && pif.Get(XenApi.PIF.IP) == ip && pif.Get(XenApi.PIF.Netmask) == netmask && pif.Get(XenApi.PIF.Gateway) == gateway;
        if (!keepsAddress && pif.Get(XenApi.PIF.CurrentlyAttached)
            && (await database.GetAllAsync(XenClasses.Pool, cancellationToken)).Any(p => p.Get(XenApi.Pool.HaEnabled)))
        {
            throw new XenApiException("HA_IS_ENABLED");
        }

        if (mode == IpConfigurationMode.Static)
        {
            AssertIPv4("IP", ip);
            AssertIPv4("netmask", netmask);
        }

        foreach (var (parameter, value) in new[] { ("IP", ip), ("netmask", netmask), ("gateway", gateway) })
        {
            if (value.Length > 0)
            {
                AssertIPv4(parameter, value);
            }
        }

        if (netmask.Length > 0 && DottedIPv4.NetmaskPrefixLength(netmask) is null)
        {
            throw new XenApiException("INVALID_IP_ADDRESS_SPECIFIED", "netmask");
        }

        if (pif.Get(XenApi.PIF.Management) && mode == IpConfigurationMode.None && pif.Get(XenApi.PIF.PrimaryAddressType) == PrimaryAddressType.IPv4)
        {
            throw new XenApiException("PIF_IS_MANAGEMENT_IFACE", pif.Ref);
        }
    }

    /// <summary>The management interface's configuration given again as it is: nothing to do; anything else refused.</summary>
    private static void AssertManagementUnchanged(XenObject pif, IpConfigurationMode mode, string ip, string netmask, string gateway, string dns)
    {
        if (pif.Get(XenApi.PIF.IpConfigurationMode) != mode || pif.Get(XenApi.PIF.IP) != ip || pif.Get(XenApi.PIF.Netmask) != netmask
            || pif.Get(XenApi.PIF.Gateway) != gateway || pif.Get(XenApi.PIF.DNS) != dns)
        {
            throw new XenApiException("OPERATION_NOT_ALLOWED",
                $"PIF {pif.Uuid} is its host's management interface: its address is also the host's in the pool database's membership, in its "
                + "certificate and in the other hosts' connections, and Corral does not change it while the host is in the pool");
        }
    }

    private static void AssertIPv4(string parameter, string value)
    {
        if (!DottedIPv4.IsAddress(value))
        {
            throw new XenApiException("INVALID_IP_ADDRESS_SPECIFIED", parameter);
        }
    }
}
