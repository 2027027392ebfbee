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
