using System.Net;
using Corral.Agent.Hosting;
using Corral.Agent.Networking;
using Corral.Model;
using Corral.Networking;
using Corral.PoolDatabase;
using Xunit;

namespace Corral.UnitTests;

/// <summary>
/// The host's network cards read from iproute2's JSON (as <c>ip -d -j addr show</c> prints it on a host laid out as
/// the lab's: eth0 a port of xenbr0, which carries the management address; eth1 a port of the VM bridge xenbr1; a
/// storage card with its own address) and the PIFs a scan makes of them.
/// </summary>
public sealed class PifPlanTests
{
    private const string Links = """
        [{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"mtu":65536,"link_type":"loopback","address":"00:00:00:00:00:00",
          "addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host"}]},
         {"ifindex":2,"ifname":"eth0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,"master":"xenbr0","link_type":"ether",
          "address":"aa:00:00:00:00:01","linkinfo":{"info_kind":"veth","info_slave_kind":"bridge"},"addr_info":[]},
         {"ifindex":3,"ifname":"xenbr0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,"link_type":"ether","address":"aa:00:00:00:00:01",
          "linkinfo":{"info_kind":"bridge"},
          "addr_info":[{"family":"inet","local":"10.78.0.11","prefixlen":24,"scope":"global"},
                       {"family":"inet6","local":"fd00::11","prefixlen":64,"scope":"global","dynamic":true},
                       {"family":"inet6","local":"fe80::1","prefixlen":64,"scope":"link"}]},
         {"ifindex":4,"ifname":"eth1","flags":["BROADCAST","MULTICAST"],"mtu":9000,"master":"xenbr1","link_type":"ether","address":"aa:00:00:00:00:02",
          "linkinfo":{"info_kind":"veth","info_slave_kind":"bridge"},"addr_info":[]},
         {"ifindex":5,"ifname":"xenbr1","flags":["BROADCAST","MULTICAST","UP"],"mtu":9000,"link_type":"ether","address":"aa:00:00:00:00:02",
          "linkinfo":{"info_kind":"bridge"},"addr_info":[]},
         {"ifindex":6,"ifname":"storage0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,"link_type":"ether","address":"aa:00:00:00:00:03",
          "linkinfo":{"info_kind":"veth"},"addr_info":[{"family":"inet","local":"10.79.0.11","prefixlen":24,"scope":"global","dynamic":true}]}]
        """;

    private static readonly HostIdentity Host = new("4f6c0a57-5a55-4c30-9a1a-6f0d3b5e1111", "OpaqueRef:host-1", "OpaqueRef:host-1-metrics");
    private static readonly DateTime Now = new(2026, 12, 7, 12, 0, 0, DateTimeKind.Utc);

    private static HostNetworkState State() => new(HostInterfaces.ParseLinks(Links),
        HostInterfaces.ParseGateways("""[{"dst":"default","gateway":"10.78.0.1","dev":"xenbr0","flags":[]}]"""),
        HostInterfaces.ParseGateways("[]"),
        HostInterfaces.ParseNameServers("# local\nnameserver 10.78.0.1\nsearch lab\nnameserver 9.9.9.9\n"));

    private static List<ScannedNic> Nics(HostNetworkState state) =>
        new[] { "eth0", "eth1", "storage0" }.Select(n => new ScannedNic(state.Find(n)!, new NicHardware(n != "eth1", 10000, true, "1af4", "1041", "0000:00:03.0"))).ToList();

    [Fact]
    public void Links_are_read_with_their_kind_bridge_and_addresses()
    {
        var state = State();
        var eth0 = state.Find("eth0")!;
        Assert.Equal(("veth", "xenbr0", true, 1500), (eth0.Kind, eth0.Master, eth0.AdminUp, eth0.Mtu));
        Assert.True(state.Find("xenbr0")!.IsBridge);
        Assert.Equal("xenbr0", state.ConfiguredLinkOf(eth0).Name);
        Assert.Equal("storage0", state.ConfiguredLinkOf(state.Find("storage0")!).Name);
        Assert.False(state.Find("eth1")!.AdminUp);
        Assert.Equal(["10.78.0.1", "9.9.9.9"], state.NameServers);
        Assert.Equal("10.78.0.1", state.IPv4Gateways["xenbr0"]);
        Assert.Equal("255.255.255.0", state.Find("xenbr0")!.Addresses[0].Netmask);
        Assert.Equal("255.255.240.0", new LinkAddress(IPAddress.Parse("10.0.0.1"), 20, false, false).Netmask);
        Assert.Equal("0.0.0.0", new LinkAddress(IPAddress.Parse("10.0.0.1"), 0, false, false).Netmask);
    }

    [Fact]
    public void A_first_scan_introduces_a_pif_per_card_on_its_bridges_network_and_marks_the_management_one()
    {
        var state = State();
        var vmNetwork = Network("xenbr1", "OpaqueRef:vm-network");
        var tx = PifPlan.Plan(Host, IPAddress.Parse("10.78.0.11"), state, Nics(state), [], new Dictionary<string, XenObject>(), [vmNetwork], Now);

        var pifs = Created(tx, XenClasses.PIF).ToDictionary(p => p.Get(XenApi.PIF.Device));
        Assert.Equal(["eth0", "eth1", "storage0"], pifs.Keys.Order());
        var eth0 = pifs["eth0"];
        Assert.True(eth0.Get(XenApi.PIF.Management));
        Assert.Equal((IpConfigurationMode.Static, "10.78.0.11", "255.255.255.0", "10.78.0.1", "10.78.0.1,9.9.9.9"),
            (eth0.Get(XenApi.PIF.IpConfigurationMode), eth0.Get(XenApi.PIF.IP), eth0.Get(XenApi.PIF.Netmask), eth0.Get(XenApi.PIF.Gateway), eth0.Get(XenApi.PIF.DNS)));
        Assert.Equal(Ipv6ConfigurationMode.Autoconf, eth0.Get(XenApi.PIF.Ipv6ConfigurationMode));
        Assert.Equal(["fd00::11/64"], eth0.Get(XenApi.PIF.IPv6));
        Assert.Equal(("aa:00:00:00:00:01", -1L, true, true), (eth0.Get(XenApi.PIF.MAC), eth0.Get(XenApi.PIF.VLAN), eth0.Get(XenApi.PIF.Physical), eth0.Get(XenApi.PIF.CurrentlyAttached)));
        Assert.Equal(PifPlan.PifRefOf(Host.Uuid, "eth0"), eth0.Ref);

        // eth1 is on the existing network of its bridge; eth0's bridge had none, so the scan made it, named as xapi names it.
        Assert.Equal(vmNetwork.Ref, pifs["eth1"].Get(XenApi.PIF.Network));
        Assert.False(pifs["eth1"].Get(XenApi.PIF.Management));
        Assert.False(pifs["eth1"].Get(XenApi.PIF.CurrentlyAttached));
        Assert.Equal((9000L, IpConfigurationMode.None, ""), (pifs["eth1"].Get(XenApi.PIF.MTU), pifs["eth1"].Get(XenApi.PIF.IpConfigurationMode), pifs["eth1"].Get(XenApi.PIF.IP)));
        var networks = Created(tx, XenClasses.Network).ToDictionary(n => n.Get(XenApi.Network.Bridge));
        Assert.Equal(["brstorage0", "xenbr0"], networks.Keys.Order());
        Assert.Equal(("Pool-wide network associated with eth0", PifPlan.NetworkRefOf("xenbr0")), (networks["xenbr0"].Get(XenApi.Network.NameLabel), networks["xenbr0"].Ref));
        Assert.Equal(networks["xenbr0"].Ref, eth0.Get(XenApi.PIF.Network));

        // The storage card has its own address, from DHCP, and no DNS (that is the management PIF's).
        Assert.Equal((IpConfigurationMode.DHCP, "10.79.0.11", ""), (pifs["storage0"].Get(XenApi.PIF.IpConfigurationMode), pifs["storage0"].Get(XenApi.PIF.IP), pifs["storage0"].Get(XenApi.PIF.DNS)));

        var metrics = Created(tx, XenApi.PIFMetrics.ClassName).Single(m => m.Ref == eth0.Get(XenApi.PIF.Metrics));
        Assert.Equal((true, 10000L, true, "1af4", "1041", "0000:00:03.0"), (metrics.Get(XenApi.PIFMetrics.Carrier), metrics.Get(XenApi.PIFMetrics.Speed),
            metrics.Get(XenApi.PIFMetrics.Duplex), metrics.Get(XenApi.PIFMetrics.VendorId), metrics.Get(XenApi.PIFMetrics.DeviceId), metrics.Get(XenApi.PIFMetrics.PciBusPath)));
    }

    [Fact]
    public void A_scan_of_records_that_already_say_it_writes_nothing_and_a_change_writes_only_that_record()
    {
        var state = State();
        var first = PifPlan.Plan(Host, IPAddress.Parse("10.78.0.11"), state, Nics(state), [], new Dictionary<string, XenObject>(), [], Now);
        var pifs = Created(first, XenClasses.PIF).ToList();
        var metrics = Created(first, XenApi.PIFMetrics.ClassName).ToDictionary(m => m.Ref);
        var networks = Created(first, XenClasses.Network).ToList();

        Assert.True(PifPlan.Plan(Host, IPAddress.Parse("10.78.0.11"), state, Nics(state), pifs, metrics, networks, Now.AddSeconds(10)).IsEmpty);

        // eth1 comes up, and its carrier with it.
        var up = state with { Links = state.Links.Select(l => l.Name == "eth1" ? l with { AdminUp = true } : l).ToList() };
        var nics = Nics(up).Select(n => n.Link.Name == "eth1" ? n with { Hardware = n.Hardware! with { Carrier = true } } : n).ToList();
        var second = PifPlan.Plan(Host, IPAddress.Parse("10.78.0.11"), up, nics, pifs, metrics, networks, Now.AddSeconds(20));
        var updated = Assert.Single(second.Writes, w => w.Object.Class == XenClasses.PIF);
        Assert.Equal(("eth1", true), (updated.Object.Get(XenApi.PIF.Device), updated.Object.Get(XenApi.PIF.CurrentlyAttached)));
        var refreshed = Assert.Single(second.Writes, w => w.Object.Class == XenApi.PIFMetrics.ClassName);
        Assert.Equal((true, Now.AddSeconds(20)), (refreshed.Object.Get(XenApi.PIFMetrics.Carrier), refreshed.Object.Get(XenApi.PIFMetrics.LastUpdated)));
        Assert.All(second.Writes, w => Assert.Equal(PoolWriteKind.Update, w.Kind));
    }

    [Fact]
    public void A_card_that_is_gone_keeps_its_pif_detached()
    {
        var state = State();
        var first = PifPlan.Plan(Host, IPAddress.Parse("10.78.0.11"), state, Nics(state), [], new Dictionary<string, XenObject>(), [], Now);
        var pifs = Created(first, XenClasses.PIF).ToList();
        var metrics = Created(first, XenApi.PIFMetrics.ClassName).ToDictionary(m => m.Ref);

        var tx = PifPlan.Plan(Host, IPAddress.Parse("10.78.0.11"), state, Nics(state).Where(n => n.Link.Name != "storage0").ToList(), pifs, metrics,
            Created(first, XenClasses.Network).ToList(), Now);
        var write = Assert.Single(tx.Writes);
        Assert.Equal((PoolWriteKind.Update, "storage0", false), (write.Kind, write.Object.Get(XenApi.PIF.Device), write.Object.Get(XenApi.PIF.CurrentlyAttached)));
    }

    [Theory]
    [InlineData("eth0", null, "xenbr0")]
    [InlineData("eth12", null, "xenbr12")]
    [InlineData("eno1", null, "breno1")]
    [InlineData("enp129s0f1np1", null, "brenp129s0f1np1")]
    [InlineData("enp129s0f1np1x", null, "brenp129s0f1np1")]
    [InlineData("eth0", "vmbr0", "vmbr0")]
    public void A_cards_network_is_its_bridges_or_xapis_name_for_one(string card, string? bridge, string expected)
    {
        var links = new List<HostLink> { new(card, "aa:00:00:00:00:09", 1500, true, "", bridge, []) };
        if (bridge is not null)
        {
            links.Add(new HostLink(bridge, "aa:00:00:00:00:09", 1500, true, "bridge", null, []));
        }

        var state = new HostNetworkState(links, new Dictionary<string, string>(), new Dictionary<string, string>(), []);
        Assert.Equal(expected, PifPlan.BridgeOf(links[0], state));
    }

    [Fact]
    public void Stable_references_are_the_same_for_the_same_name_and_well_formed()
    {
        Assert.Equal(PifPlan.NetworkRefOf("xenbr0"), PifPlan.NetworkRefOf("xenbr0"));
        Assert.NotEqual(PifPlan.NetworkRefOf("xenbr0"), PifPlan.NetworkRefOf("xenbr1"));
        Assert.True(OpaqueRef.IsWellFormed(PifPlan.NetworkRefOf("xenbr0")));
        Assert.Equal('8', OpaqueRef.StableUuid("x")[14]);
    }

    private static XenObject Network(string bridge, string reference)
    {
        var tx = new PoolTransaction();
        var network = tx.Create(XenClasses.NetworkSchema, reference: reference);
        network.Set(XenApi.Network.Bridge, bridge);
        return network;
    }

    private static IEnumerable<XenObject> Created(PoolTransaction tx, string className) =>
        tx.Writes.Where(w => w.Kind == PoolWriteKind.Create && w.Object.Class == className).Select(w => w.Object);

    [Fact]
    public void A_pif_given_an_ip_configuration_shows_its_mode_its_static_gateway_and_its_dns()
    {
        var state = State();
        var configured = new Dictionary<string, PifAddressSettings>
        {
            // DHCP asked, no lease yet; static on the storage card, with a gateway no route uses.
            ["eth1"] = new(IpConfigurationMode.DHCP, "", "", "", ""),
            ["storage0"] = new(IpConfigurationMode.Static, "10.79.0.11", "255.255.255.0", "10.79.0.1", "10.79.0.2"),
        };
        var tx = PifPlan.Plan(Host, IPAddress.Parse("10.78.0.11"), state, Nics(state), [], new Dictionary<string, XenObject>(), [], Now, configured);
        XenObject Pif(string device) => tx.Writes.Select(w => w.Object).Single(o => o.Class == XenClasses.PIF && o.Get(XenApi.PIF.Device) == device);

        Assert.Equal((IpConfigurationMode.DHCP, "", ""), (Pif("eth1").Get(XenApi.PIF.IpConfigurationMode), Pif("eth1").Get(XenApi.PIF.IP), Pif("eth1").Get(XenApi.PIF.Gateway)));
        var storage = Pif("storage0");
        // The mode as given (the address there is marked dynamic), the address as the host has it.
        Assert.Equal((IpConfigurationMode.Static, "10.79.0.11", "255.255.255.0", "10.79.0.1", "10.79.0.2"), (storage.Get(XenApi.PIF.IpConfigurationMode),
            storage.Get(XenApi.PIF.IP), storage.Get(XenApi.PIF.Netmask), storage.Get(XenApi.PIF.Gateway), storage.Get(XenApi.PIF.DNS)));
        // The management PIF without a configuration given: as the host has it.
        Assert.Equal((IpConfigurationMode.Static, "10.78.0.1", "10.78.0.1,9.9.9.9"), (Pif("eth0").Get(XenApi.PIF.IpConfigurationMode),
            Pif("eth0").Get(XenApi.PIF.Gateway), Pif("eth0").Get(XenApi.PIF.DNS)));
    }

    [Theory]
    [InlineData("255.255.255.0", 24)]
    [InlineData("255.255.240.0", 20)]
    [InlineData("255.255.255.255", 32)]
    [InlineData("128.0.0.0", 1)]
    [InlineData("0.0.0.0", null)]
    [InlineData("255.0.255.0", null)]
    [InlineData("255.255.255", null)]
    [InlineData("ffff::", null)]
    [InlineData("", null)]
    public void Netmasks_are_dotted_with_contiguous_ones(string netmask, int? prefix) => Assert.Equal(prefix, DottedIPv4.NetmaskPrefixLength(netmask));

    [Fact]
    public void The_configurations_given_are_kept_in_one_file_across_restarts()
    {
        var path = Path.Combine(Directory.CreateTempSubdirectory("corral-pif-ip-").FullName, "pif-ip.json");
        try
        {
            Assert.Empty(new PifAddressStore(path).Load());
            new PifAddressStore(path).Save("eth1", new(IpConfigurationMode.DHCP, "", "", "", ""));
            new PifAddressStore(path).Save("eth2", new(IpConfigurationMode.Static, "10.0.0.5", "255.255.255.0", "", "10.0.0.1"));
            new PifAddressStore(path).Save("eth1", new(IpConfigurationMode.None, "", "", "", ""));
            var loaded = new PifAddressStore(path).Load();
            Assert.Equal(IpConfigurationMode.None, loaded["eth1"].Mode);
            Assert.Equal(new PifAddressSettings(IpConfigurationMode.Static, "10.0.0.5", "255.255.255.0", "", "10.0.0.1"), loaded["eth2"]);
            Assert.Contains("\"Static\"", File.ReadAllText(path), StringComparison.Ordinal);
            File.WriteAllText(path, "{ not json");
            Assert.Contains(path, Assert.Throws<InvalidDataException>(() => new PifAddressStore(path).Load()).Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(path)!, recursive: true);
        }
    }
}
