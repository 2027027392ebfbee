using Xunit;

namespace Corral.EndToEndTests;

/// <summary>
/// The lab hosts' network cards as an administrator meets them through <c>xe</c>, as on XenServer: a PIF per card
/// (eth0 on the management bridge xenbr0 with the host's address, eth1 on the VM network's xenbr1, storage0 with its own
/// address), a card unplugged and its link brought back up behind Corral's back (the record follows), what xapi refuses
/// to unplug or forget (a card a running VM uses, one marked disallow-unplug, the management card), a card introduced
/// by name, forgotten and found again by <c>pif-scan</c>, and a VM refused on the network of a card that carries the
/// host's own address outside a bridge (moving it would cut the host off).
/// </summary>
[Collection(SharedLabCollection.Name)]
public sealed class NetworkLabTests(SharedLab shared)
{
    private readonly LabSession _lab = shared.Lab;

    [Fact]
    public async Task Each_hosts_cards_are_pifs_on_their_bridges_networks_followed_scanned_and_forgotten_as_xapis()
    {
        for (var host = 1; host <= 3; host++)
        {
            var uuid = await _lab.Xe("host-list", $"name-label=lab-host{host}", "--minimal");
            var address = _lab.Addresses[host - 1];
            Assert.Equal("eth0,eth1,storage0", string.Join(',', (await _lab.Xe("pif-list", $"host-uuid={uuid}", "params=device", "--minimal")).Split(',').Order()));
            var management = await _lab.Xe("pif-list", $"host-uuid={uuid}", "management=true", "--minimal");
            Assert.Equal("eth0", await _lab.Xe("pif-param-get", $"uuid={management}", "param-name=device"));
            Assert.Equal(address, await _lab.Xe("pif-param-get", $"uuid={management}", "param-name=IP"));
            Assert.Equal("Static", await _lab.Xe("pif-param-get", $"uuid={management}", "param-name=IP-configuration-mode"));
            Assert.Equal("255.255.255.0", await _lab.Xe("pif-param-get", $"uuid={management}", "param-name=netmask"));
            Assert.Equal("true", await _lab.Xe("pif-param-get", $"uuid={management}", "param-name=carrier"));
            var managementNetwork = await _lab.Xe("pif-param-get", $"uuid={management}", "param-name=network-uuid");
            Assert.Equal("xenbr0", await _lab.Xe("network-param-get", $"uuid={managementNetwork}", "param-name=bridge"));

            var vmCard = await _lab.Xe("pif-list", $"host-uuid={uuid}", "device=eth1", "--minimal");
            var vmNetwork = await _lab.Xe("pif-param-get", $"uuid={vmCard}", "param-name=network-uuid");
            Assert.Equal("xenbr1", await _lab.Xe("network-param-get", $"uuid={vmNetwork}", "param-name=bridge"));
            Assert.Equal("None", await _lab.Xe("pif-param-get", $"uuid={vmCard}", "param-name=IP-configuration-mode"));
            var storage = await _lab.Xe("pif-list", $"host-uuid={uuid}", "device=storage0", "--minimal");
            Assert.StartsWith(File.ReadAllText(Path.Combine(_lab.RunDirectory, "storage-subnet")).Trim() + ".",
                await _lab.Xe("pif-param-get", $"uuid={storage}", "param-name=IP"), StringComparison.Ordinal);
        }

        // The pool's hosts share the networks of their bridges: one VM network, one management network.
        var vmCards = (await _lab.Xe("pif-list", "device=eth1", "params=network-uuid", "--minimal")).Split(',');
        Assert.Equal((3, 1), (vmCards.Length, vmCards.Distinct().Count()));
        Assert.Single((await _lab.Xe("pif-list", "device=eth0", "params=network-uuid", "--minimal")).Split(',').Distinct());
        var host3 = await _lab.Xe("host-list", "name-label=lab-host3", "--minimal");
        var ns = _lab.Namespace(3);

        // lab-host3's VM card (no VM runs there) unplugged as an administrator does: the link goes down, the record says
        // so at once. Brought back up behind Corral's back (ip link), the agent's refresh follows.
        var card = await _lab.Xe("pif-list", $"host-uuid={host3}", "device=eth1", "--minimal");
        await _lab.Xe("pif-unplug", $"uuid={card}");
        try
        {
            Assert.Equal("false", await _lab.Xe("pif-param-get", $"uuid={card}", "param-name=currently-attached"));
            Assert.Contains("state DOWN", (await _lab.RunAsync("ip", "-n", ns, "link", "show", "eth1")).Output, StringComparison.Ordinal);
            await LabSession.Eventually(async () => await _lab.Xe("pif-param-get", $"uuid={card}", "param-name=carrier") == "false",
                TimeSpan.FromSeconds(40), "eth1's PIF to show no carrier");
        }
        finally
        {
            await _lab.RunAsync("ip", "-n", ns, "link", "set", "eth1", "up");
        }

        await LabSession.Eventually(async () => await _lab.Xe("pif-param-get", $"uuid={card}", "param-name=currently-attached") == "true"
            && await _lab.Xe("pif-param-get", $"uuid={card}", "param-name=carrier") == "true", TimeSpan.FromSeconds(40), "eth1's PIF to show it up again");

        // What xapi refuses to unplug: the card of a network a VM of that host uses, one marked disallow-unplug, the management card.
        var host1 = await _lab.Xe("host-list", "name-label=lab-host1", "--minimal");
        var (inUse, inUseSaid) = await _lab.TryXe("pif-unplug", $"uuid={await _lab.Xe("pif-list", $"host-uuid={host1}", "device=eth1", "--minimal")}");
        Assert.True(inUse != 0 && inUseSaid.Contains("Network has active VIFs", StringComparison.Ordinal), inUseSaid);
        await _lab.Xe("pif-param-set", $"uuid={card}", "disallow-unplug=true");
        var (kept, keptSaid) = await _lab.TryXe("pif-unplug", $"uuid={card}");
        Assert.True(kept != 0 && keptSaid.Contains("does not allow unplug", StringComparison.Ordinal), keptSaid);
        await _lab.Xe("pif-param-set", $"uuid={card}", "disallow-unplug=false");
        var (managementCode, managementSaid) = await _lab.TryXe("pif-unplug", $"uuid={await _lab.Xe("pif-list", $"host-uuid={host3}", "management=true", "--minimal")}");
        Assert.True(managementCode != 0 && managementSaid.Contains("the specified PIF is the management interface", StringComparison.Ordinal), managementSaid);

        // The management PIF cannot be forgotten; another can, and a scan finds its card again.
        var management3 = await _lab.Xe("pif-list", $"host-uuid={host3}", "management=true", "--minimal");
        var (code, refused) = await _lab.TryXe("pif-forget", $"uuid={management3}");
        Assert.NotEqual(0, code);
        Assert.Contains("the specified PIF is the management interface", refused, StringComparison.Ordinal);
        var storage3 = await _lab.Xe("pif-list", $"host-uuid={host3}", "device=storage0", "--minimal");
        await _lab.Xe("pif-forget", $"uuid={storage3}");
        Assert.Equal("", await _lab.Xe("pif-list", $"host-uuid={host3}", "device=storage0", "--minimal"));
        // Introduced by name (with the wrong MAC first), then forgotten again and found by a scan.
        var (wrongMac, wrongMacSaid) = await _lab.TryXe("pif-introduce", $"host-uuid={host3}", "device=storage0", "mac=02:00:00:00:00:01");
        Assert.True(wrongMac != 0 && wrongMacSaid.Contains("Could not find a network interface with the specified device name and MAC address", StringComparison.Ordinal), wrongMacSaid);
        var introduced = await _lab.Xe("pif-introduce", $"host-uuid={host3}", "device=storage0");
        Assert.Equal("storage0", await _lab.Xe("pif-param-get", $"uuid={introduced}", "param-name=device"));
        var (twice, twiceSaid) = await _lab.TryXe("pif-introduce", $"host-uuid={host3}", "device=storage0");
        Assert.True(twice != 0 && twiceSaid.Contains("A PIF with this specified device name already exists", StringComparison.Ordinal), twiceSaid);
        await _lab.Xe("pif-forget", $"uuid={introduced}");
        await _lab.Xe("pif-scan", $"host-uuid={host3}");
        var found = await _lab.Xe("pif-list", $"host-uuid={host3}", "device=storage0", "--minimal");
        Assert.NotEqual("", found);
        Assert.Equal("true", await _lab.Xe("pif-param-get", $"uuid={found}", "param-name=currently-attached"));

        await AVmOnACardWithItsOwnAddressIsRefusedAsync(host3, found);
    }

    [Fact]
    public async Task Pifs_take_a_static_address_or_one_leased_by_dhcp_on_their_bridge_and_give_it_up()
    {
        // lab-host1's VM card given a static address on the VM network (xe, as an administrator), and a DHCP server
        // (busybox's udhcpd) run there; lab-host2's VM card then configured by DHCP through the Python SDK (a script, as
        // configuration management would), leasing an address from it across the lab's switch. lab-host2 "rebooted"
        // (its agent killed, its DHCP client and address gone) gets its configuration back when its agent starts. Both
        // given up again.
        var subnet = File.ReadAllText(Path.Combine(_lab.RunDirectory, "subnet")).Trim();
        var host1 = await _lab.Xe("host-list", "name-label=lab-host1", "--minimal");
        var host2 = await _lab.Xe("host-list", "name-label=lab-host2", "--minimal");
        var staticCard = await _lab.Xe("pif-list", $"host-uuid={host1}", "device=eth1", "--minimal");
        var dhcpCard = await _lab.Xe("pif-list", $"host-uuid={host2}", "device=eth1", "--minimal");
        var (serverNs, dhcpNs) = (_lab.Namespace(1), _lab.Namespace(2));
        var dhcpDirectory = Directory.CreateTempSubdirectory("corral-udhcpd-").FullName;
        System.Diagnostics.Process? server = null;
        try
        {
            var (bad, badSaid) = await _lab.TryXe("pif-reconfigure-ip", $"uuid={staticCard}", "mode=static", $"IP={subnet}.231", "netmask=255.0.255.0");
            Assert.True(bad != 0 && badSaid.Contains("netmask", StringComparison.Ordinal), badSaid);
            await _lab.Xe("pif-reconfigure-ip", $"uuid={staticCard}", "mode=static", $"IP={subnet}.231", "netmask=255.255.255.0", "DNS=9.9.9.9");
            Assert.Contains($"inet {subnet}.231/24", (await _lab.RunAsync("ip", "-n", serverNs, "-4", "addr", "show", "dev", "xenbr1")).Output, StringComparison.Ordinal);
            Assert.Equal(("Static", $"{subnet}.231", "255.255.255.0", "9.9.9.9"), (await _lab.Xe("pif-param-get", $"uuid={staticCard}", "param-name=IP-configuration-mode"),
                await _lab.Xe("pif-param-get", $"uuid={staticCard}", "param-name=IP"), await _lab.Xe("pif-param-get", $"uuid={staticCard}", "param-name=netmask"),
                await _lab.Xe("pif-param-get", $"uuid={staticCard}", "param-name=DNS")));

            File.WriteAllText(Path.Combine(dhcpDirectory, "udhcpd.conf"), $"""
                start {subnet}.241
                end {subnet}.245
                interface xenbr1
                lease_file {dhcpDirectory}/leases
                pidfile {dhcpDirectory}/pid
                option subnet 255.255.255.0
                option lease 600
                """);
            File.WriteAllText(Path.Combine(dhcpDirectory, "leases"), "");
            server = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("ip",
                ["netns", "exec", serverNs, "busybox", "udhcpd", "-f", Path.Combine(dhcpDirectory, "udhcpd.conf")]) { RedirectStandardError = true, RedirectStandardOutput = true })!;

            var dhcpPif = await _lab.Xe("pif-param-get", $"uuid={dhcpCard}", "param-name=uuid");
            var (sdk, sdkSaid) = await _lab.RunAsync("/usr/bin/python3", "-c", $$"""
                from os_xenapi.client import XenAPI
                s = XenAPI.Session("http://{{_lab.Addresses[0]}}")
                s.xenapi.login_with_password("root", "{{_lab.Password}}")
                pif = s.xenapi.PIF.get_by_uuid("{{dhcpPif}}")
                s.xenapi.PIF.reconfigure_ip(pif, "DHCP", "", "", "", "")
                print(s.xenapi.PIF.get_ip_configuration_mode(pif))
                """);
            Assert.True(sdk == 0 && sdkSaid.Trim().EndsWith("DHCP", StringComparison.Ordinal), sdkSaid);
            await LabSession.Eventually(async () => (await _lab.Xe("pif-param-get", $"uuid={dhcpCard}", "param-name=IP")).StartsWith($"{subnet}.24", StringComparison.Ordinal),
                TimeSpan.FromSeconds(60), "lab-host2's VM card to lease an address");
            var leased = await _lab.Xe("pif-param-get", $"uuid={dhcpCard}", "param-name=IP");
            var shown = (await _lab.RunAsync("ip", "-n", dhcpNs, "-4", "addr", "show", "dev", "xenbr1")).Output;
            Assert.Contains($"inet {leased}/24", shown, StringComparison.Ordinal);
            Assert.Contains("dynamic", shown, StringComparison.Ordinal);
            Assert.Equal("DHCP", await _lab.Xe("pif-param-get", $"uuid={dhcpCard}", "param-name=IP-configuration-mode"));
            Assert.Equal(0, (await _lab.RunAsync("ip", "netns", "exec", dhcpNs, "ping", "-c", "1", "-W", "2", $"{subnet}.231")).Code);

            // As after a reboot: no agent, no DHCP client, no address; the agent started again runs the client again.
            await _lab.LabAsync("kill-agent", "2");
            var pidFile = Path.Combine(_lab.LabDirectory, "host2", "state", "dhclient", "xenbr1.pid");
            Assert.Equal(0, (await _lab.RunAsync("kill", File.ReadAllText(pidFile).Trim())).Code);
            await _lab.RunAsync("ip", "-n", dhcpNs, "-4", "addr", "flush", "dev", "xenbr1", "scope", "global");
            await _lab.LabAsync("start-agent", "2");
            await LabSession.Eventually(async () => (await _lab.RunAsync("ip", "-n", dhcpNs, "-4", "addr", "show", "dev", "xenbr1")).Output
                .Contains($"inet {subnet}.24", StringComparison.Ordinal), TimeSpan.FromSeconds(90), "lab-host2's VM card to lease an address again");
            await LabSession.Eventually(async () => (await _lab.TryXe("host-list", "params=host-metrics-live", "--minimal")).Output == "true,true,true",
                TimeSpan.FromSeconds(60), "lab-host2 live again");

            // The management interface keeps its address.
            var management2 = await _lab.Xe("pif-list", $"host-uuid={host2}", "management=true", "--minimal");
            var (moved, movedSaid) = await _lab.TryXe("pif-reconfigure-ip", $"uuid={management2}", "mode=dhcp");
            Assert.True(moved != 0 && movedSaid.Contains("management interface", StringComparison.Ordinal), movedSaid);
        }
        finally
        {
            await _lab.TryXe("pif-reconfigure-ip", $"uuid={dhcpCard}", "mode=none");
            await _lab.TryXe("pif-reconfigure-ip", $"uuid={staticCard}", "mode=none");
            if (server is not null)
            {
                server.Kill();
                await server.WaitForExitAsync();
                server.Dispose();
            }

            Directory.Delete(dhcpDirectory, recursive: true);
        }

        // Given up: no address on either bridge, lab-host2's DHCP client gone, the records say None.
        Assert.DoesNotContain("inet ", (await _lab.RunAsync("ip", "-n", dhcpNs, "-4", "addr", "show", "dev", "xenbr1")).Output, StringComparison.Ordinal);
        Assert.DoesNotContain("inet ", (await _lab.RunAsync("ip", "-n", serverNs, "-4", "addr", "show", "dev", "xenbr1")).Output, StringComparison.Ordinal);
        Assert.Equal(("None", ""), (await _lab.Xe("pif-param-get", $"uuid={dhcpCard}", "param-name=IP-configuration-mode"),
            await _lab.Xe("pif-param-get", $"uuid={dhcpCard}", "param-name=IP")));
        var programs = (await _lab.RunAsync("ip", "netns", "pids", dhcpNs)).Output.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(pid => File.Exists($"/proc/{pid.Trim()}/comm") ? File.ReadAllText($"/proc/{pid.Trim()}/comm").Trim() : "");
        Assert.DoesNotContain("dhclient", programs);
    }

    /// <summary>storage0 carries its host's storage address outside a bridge: a VM on its network does not start there.</summary>
    private async Task AVmOnACardWithItsOwnAddressIsRefusedAsync(string host, string storagePif)
    {
        var network = await _lab.Xe("pif-param-get", $"uuid={storagePif}", "param-name=network-uuid");
        var template = await _lab.Xe("template-list", "name-label=Corral Linux test (no tools)", "--minimal");
        var vm = await _lab.Xe("vm-install", $"template={template}", "new-name-label=on the storage network",
            $"sr-uuid={await _lab.Xe("sr-list", "name-label=Shared storage", "--minimal")}");
        try
        {
            foreach (var vif in (await _lab.Xe("vif-list", $"vm-uuid={vm}", "--minimal")).Split(',', StringSplitOptions.RemoveEmptyEntries))
            {
                await _lab.Xe("vif-destroy", $"uuid={vif}");
            }

            await _lab.Xe("vif-create", $"vm-uuid={vm}", $"network-uuid={network}", "device=0", "mac=random");
            var (code, output) = await _lab.TryXe("vm-start", $"uuid={vm}", $"on={await _lab.Xe("host-param-get", $"uuid={host}", "param-name=name-label")}");
            Assert.NotEqual(0, code);
            // xe says PIF_CONFIGURATION_ERROR in xapi's words, with its parameters.
            Assert.Contains("An unknown error occurred while attempting to configure an interface", output, StringComparison.Ordinal);
            Assert.Contains("msg: storage0 carries this host's addresses", output, StringComparison.Ordinal);
            Assert.Equal("halted", await _lab.Xe("vm-param-get", $"uuid={vm}", "param-name=power-state"));
        }
        finally
        {
            await _lab.TryXe("vm-uninstall", $"uuid={vm}", "force=true");
        }
    }
}
