using System.Net;
using Corral.Agent.Hosting;
using Corral.Model;
using Corral.Networking;
using Corral.PoolDatabase;

namespace Corral.Agent.Networking;

/// <summary>One network card of the host as a scan found it: its link, and its hardware (null when sysfs has none).</summary>
public sealed record ScannedNic(HostLink Link, NicHardware? Hardware)
{
    /// <summary>Whether the PIF made for it is managed (xapi's <c>PIF.introduce</c> may say not).</summary>
    public bool Managed { get; init; } = true;
}

/// <summary>
/// What a scan of the host's network cards changes in the pool database, as xapi's <c>PIF.scan</c> and its monitor do:
/// a PIF (with its PIF_metrics) for each card that has none, on the network of the bridge the card is a port of (made
/// when the pool has none: "Pool-wide network associated with ethN", as xapi names it), and the live facts of every
/// card refreshed: MAC, MTU, attached or not, its IP configuration as the host has it (on the card, or on its bridge),
/// whether it carries the host's management address, and carrier, speed and bus identity. A card that is gone keeps
/// its PIF (an administrator forgets it), detached. Pure: the same state and records give the same writes.
/// </summary>
public static class PifPlan
{
    /// <summary>The reference of a network made for a bridge: whoever makes it first wins, the others find it.</summary>
    public static string NetworkRefOf(string bridge) => OpaqueRef.Stable("network-bridge:" + bridge);

    public static string PifRefOf(string hostUuid, string device) => OpaqueRef.Stable($"pif:{hostUuid}:{device}");

    public static string MetricsRefOf(string hostUuid, string device) => OpaqueRef.Stable($"pif-metrics:{hostUuid}:{device}");

    /// <summary>
    /// The bridge a card's network uses: the one it is a port of, else xapi's convention (ethN's is xenbrN, another
    /// card's br&lt;name&gt;, within Linux's 15 characters).
    /// </summary>
    public static string BridgeOf(HostLink nic, HostNetworkState state)
    {
        if (nic.Master is { } master && state.Find(master) is { IsBridge: true })
        {
            return master;
        }

        return nic.Name.StartsWith("eth", StringComparison.Ordinal) && nic.Name.Length > 3 && nic.Name[3..].All(char.IsAsciiDigit)
            ? "xenbr" + nic.Name[3..]
            : ("br" + nic.Name)[..Math.Min(15, 2 + nic.Name.Length)];
    }

    /// <summary>
    /// The network of a bridge, as xapi makes one for a card: named "Pool-wide network associated with eth0" (after
    /// <paramref name="device"/>, or the card xapi's convention puts on the bridge: xenbrN's is ethN), under the bridge's
    /// stable reference.
    /// </summary>
    public static XenObject CreateNetwork(PoolTransaction tx, string bridge, string? device = null)
    {
        device ??= bridge.StartsWith("xenbr", StringComparison.Ordinal) ? "eth" + bridge[5..] : bridge;
        var network = tx.Create(XenClasses.NetworkSchema, reference: NetworkRefOf(bridge));
        network.Set(XenApi.Network.NameLabel, "Pool-wide network associated with " + device);
        network.Set(XenApi.Network.Bridge, bridge);
        network.Set(XenApi.Network.MTU, 1500L);
        network.Set(XenApi.Network.Managed, true);
        return network;
    }

    /// <summary>The writes that bring the records to what the scan found; empty when they already say it.</summary>
    /// <param name="configured">The IP configurations given to PIFs of this host (by device): their mode, gateway and DNS.</param>
    public static PoolTransaction Plan(HostIdentity host, IPAddress? management, HostNetworkState state, IReadOnlyList<ScannedNic> nics,
        IReadOnlyList<XenObject> pifs, IReadOnlyDictionary<string, XenObject> metrics, IReadOnlyList<XenObject> networks, DateTime now,
        IReadOnlyDictionary<string, PifAddressSettings>? configured = null)
    {
        configured ??= new Dictionary<string, PifAddressSettings>();
        var tx = new PoolTransaction();
        var networkByBridge = networks.GroupBy(n => n.Get(XenApi.Network.Bridge)).ToDictionary(g => g.Key, g => g.First().Ref, StringComparer.Ordinal);
        foreach (var nic in nics)
        {
            var pif = pifs.FirstOrDefault(p => p.Get(XenApi.PIF.Device) == nic.Link.Name && p.Get(XenApi.PIF.VLAN) == -1 && p.Get(XenApi.PIF.Physical));
            if (pif is null)
            {
                var bridge = BridgeOf(nic.Link, state);
                if (!networkByBridge.TryGetValue(bridge, out var networkRef))
                {
                    networkByBridge[bridge] = networkRef = CreateNetwork(tx, bridge, nic.Link.Name).Ref;
                }

                var created = tx.Create(XenClasses.PIFMetricsSchema, reference: MetricsRefOf(host.Uuid, nic.Link.Name));
                Describe(created, nic.Hardware, now);
                pif = tx.Create(XenClasses.PIFSchema, reference: PifRefOf(host.Uuid, nic.Link.Name));
                pif.Set(XenApi.PIF.Device, nic.Link.Name);
                pif.Set(XenApi.PIF.Host, host.Ref);
                pif.Set(XenApi.PIF.Network, networkRef);
                pif.Set(XenApi.PIF.VLAN, -1L);
                pif.Set(XenApi.PIF.Physical, true);
                pif.Set(XenApi.PIF.Managed, nic.Managed);
                pif.Set(XenApi.PIF.Metrics, created.Ref);
                pif.Set(XenApi.PIF.Properties, new Dictionary<string, string> { ["gro"] = "on" });
                Configure(pif, nic.Link, management, state, configured.GetValueOrDefault(nic.Link.Name));
                continue;
            }

            var changed = pif.Clone();
            Configure(changed, nic.Link, management, state, configured.GetValueOrDefault(nic.Link.Name));
            if (!changed.SameFieldsAs(pif))
            {
                tx.Update(changed);
            }

            if (metrics.TryGetValue(pif.Get(XenApi.PIF.Metrics), out var current))
            {
                var refreshed = current.Clone();
                Describe(refreshed, nic.Hardware, now);
                if (!refreshed.SameFieldsAs(current, XenApi.PIFMetrics.LastUpdated.Name))
                {
                    tx.Update(refreshed);
                }
            }
        }

        foreach (var gone in pifs.Where(p => p.Get(XenApi.PIF.Physical) && p.Get(XenApi.PIF.VLAN) == -1 && p.Get(XenApi.PIF.CurrentlyAttached)
                                             && nics.All(n => n.Link.Name != p.Get(XenApi.PIF.Device))))
        {
            var detached = gone.Clone();
            detached.Set(XenApi.PIF.CurrentlyAttached, false);
            detached.Set(XenApi.PIF.Management, false);
            tx.Update(detached);
        }

        return tx;
    }

    /// <summary>
    /// The PIF's live facts: the card's MAC, MTU and state, and the IP configuration where the host has it; for a PIF
    /// given one (<paramref name="given"/>), its mode (DHCP before the first lease too), its static gateway and its DNS.
    /// </summary>
    private static void Configure(XenObject pif, HostLink nic, IPAddress? management, HostNetworkState state, PifAddressSettings? given)
    {
        var configured = state.ConfiguredLinkOf(nic);
        var v4 = configured.Addresses.Where(a => a.IsIPv4 && !a.LinkLocal).ToList();
        var v6 = configured.Addresses.Where(a => !a.IsIPv4 && !a.LinkLocal).ToList();
        var isManagement = management is not null && configured.Addresses.Any(a => a.Address.Equals(management));
        pif.Set(XenApi.PIF.MAC, nic.Mac);
        pif.Set(XenApi.PIF.MTU, (long)nic.Mtu);
        pif.Set(XenApi.PIF.CurrentlyAttached, nic.AdminUp);
        pif.Set(XenApi.PIF.Management, isManagement);
        pif.Set(XenApi.PIF.IpConfigurationMode,
            given?.Mode ?? (v4.Count == 0 ? IpConfigurationMode.None : v4[0].Dynamic ? IpConfigurationMode.DHCP : IpConfigurationMode.Static));
        pif.Set(XenApi.PIF.IP, v4.Count == 0 ? "" : v4[0].Address.ToString());
        pif.Set(XenApi.PIF.Netmask, v4.Count == 0 ? "" : v4[0].Netmask);
        pif.Set(XenApi.PIF.Gateway, given is { Mode: IpConfigurationMode.Static } ? given.Gateway
            : v4.Count == 0 ? "" : state.IPv4Gateways.GetValueOrDefault(configured.Name, ""));
        pif.Set(XenApi.PIF.DNS, isManagement ? string.Join(',', state.NameServers) : given?.DNS ?? "");
        pif.Set(XenApi.PIF.Ipv6ConfigurationMode, v6.Count == 0 ? Ipv6ConfigurationMode.None : v6.Any(a => a.Dynamic) ? Ipv6ConfigurationMode.Autoconf : Ipv6ConfigurationMode.Static);
        pif.Set(XenApi.PIF.IPv6, v6.Select(a => a.ToString()).ToList());
        pif.Set(XenApi.PIF.Ipv6Gateway, v6.Count == 0 ? "" : state.IPv6Gateways.GetValueOrDefault(configured.Name, ""));
        pif.Set(XenApi.PIF.PrimaryAddressType, management?.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 && isManagement
            ? PrimaryAddressType.IPv6 : PrimaryAddressType.IPv4);
    }

    /// <summary>PIF_metrics from sysfs: carrier, speed (Mbit/s, 0 when unknown), duplex, PCI identity.</summary>
    private static void Describe(XenObject metrics, NicHardware? hardware, DateTime now)
    {
        metrics.Set(XenApi.PIFMetrics.Carrier, hardware?.Carrier ?? false);
        metrics.Set(XenApi.PIFMetrics.Speed, hardware?.SpeedMbps ?? 0L);
        metrics.Set(XenApi.PIFMetrics.Duplex, hardware?.FullDuplex ?? false);
        metrics.Set(XenApi.PIFMetrics.VendorId, hardware?.VendorId ?? "");
        metrics.Set(XenApi.PIFMetrics.DeviceId, hardware?.DeviceId ?? "");
        metrics.Set(XenApi.PIFMetrics.PciBusPath, hardware?.PciBusPath ?? "");
        metrics.Set(XenApi.PIFMetrics.LastUpdated, now);
    }
}
