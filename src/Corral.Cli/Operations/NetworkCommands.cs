using System.Globalization;
using System.Security.Cryptography;
using Corral.Cli.Api;
using Corral.Api.Client;

namespace Corral.Cli.Operations;

/// <summary>Networks, VIFs and PIFs: network-create/-destroy, vif-create/-destroy, pif-scan/-introduce/-forget/-plug/-unplug.</summary>
public static class NetworkCommands
{
    public static void Register(CommandRegistry r)
    {
        r.Add(new("network-create", ["name-label"], ["name-description", "MTU", "bridge", "managed"], "Create a new network.",
            CommandFlags.None, NetworkCreateAsync));
        r.Add(new("network-destroy", ["uuid"], [], "Delete an existing network.", CommandFlags.None,
            (c, ct) => StorageCommands.OnUuidAsync(c, "network", "network.destroy", ct)));
        r.Add(new("vif-create", ["device", "network-uuid", "vm-uuid"], ["mac"],
            "Create a VIF. Appropriate values for the device are listed in the parameter 'allowed-VIF-devices' on the VM. If specified, the MAC parameter is of the form aa:bb:cc:dd:ee:ff. If MAC is not specified the server will choose an appropriate MAC automatically.",
            CommandFlags.None, VifCreateAsync));
        r.Add(new("vif-destroy", ["uuid"], [], "Destroy a VIF.", CommandFlags.None, (c, ct) => StorageCommands.OnUuidAsync(c, "VIF", "VIF.destroy", ct)));
        r.Add(new("pif-scan", ["host-uuid"], [], "Scan for new physical interfaces on a host.", CommandFlags.None, async (c, ct) =>
        {
            var host = await c.CallForStringAsync("host.get_by_uuid", ct, c.Params.Required("host-uuid"));
            await c.CallAsync("PIF.scan", ct, host);
        }));
        r.Add(new("pif-forget", ["uuid"], [], "Destroy a PIF object on a particular host.", CommandFlags.None,
            (c, ct) => StorageCommands.OnUuidAsync(c, "PIF", "PIF.forget", ct)));
        r.Add(new("pif-introduce", ["host-uuid", "device"], ["mac", "managed"], "Create a new PIF object representing a physical interface on a host.",
            CommandFlags.None, async (c, ct) =>
            {
                var host = await c.CallForStringAsync("host.get_by_uuid", ct, c.Params.Required("host-uuid"));
                var pif = await c.CallForStringAsync("PIF.introduce", ct, host, c.Params.Get("mac") ?? "", c.Params.Required("device"), c.Params.Bool("managed", true));
                c.Printer.Line(await c.CallForStringAsync("PIF.get_uuid", ct, pif));
            }));
        r.Add(new("pif-plug", ["uuid"], [], "Attempt to bring up a network interface.", CommandFlags.None,
            (c, ct) => StorageCommands.OnUuidAsync(c, "PIF", "PIF.plug", ct)));
        r.Add(new("pif-unplug", ["uuid"], [], "Attempt to bring down a network interface.", CommandFlags.None,
            (c, ct) => StorageCommands.OnUuidAsync(c, "PIF", "PIF.unplug", ct)));
        r.Add(new("pif-reconfigure-ip", ["uuid", "mode"], ["IP", "netmask", "gateway", "DNS"], "Reconfigure the IP address settings on a PIF.",
            CommandFlags.None, PifReconfigureIpAsync));
    }

    /// <summary>xe's pif-reconfigure-ip: mode dhcp, none or static (any case); IP= and DNS= in any case, as xapi's CLI reads them.</summary>
    private static async Task PifReconfigureIpAsync(CommandContext c, CancellationToken ct)
    {
        var pif = await c.CallForStringAsync("PIF.get_by_uuid", ct, c.Params.Required("uuid"));
        var mode = c.Params.Required("mode").ToLowerInvariant() switch
        {
            "dhcp" => "DHCP",
            "none" => "None",
            "static" => "Static",
            var other => throw new XeFailure($"Expected 'dhcp','none' or 'static', got {other}"),
        };
        string AnyCase(string key) =>
            c.Params.All.LastOrDefault(p => string.Equals(p.Key, key, StringComparison.OrdinalIgnoreCase)).Value ?? "";
        await c.CallAsync("PIF.reconfigure_ip", ct, pif, mode, AnyCase("IP"), c.Params.Get("netmask") ?? "", c.Params.Get("gateway") ?? "", AnyCase("DNS"));
    }

    private static async Task NetworkCreateAsync(CommandContext c, CancellationToken ct)
    {
        var mtu = c.Params.Get("MTU") is { } text
            ? long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var m) ? m : throw new XeFailure($"Parameter MTU must be an integer")
            : 1500L;
        var network = await c.CallForStringAsync("network.create", ct, new Dictionary<string, object?>
        {
            ["name_label"] = c.Params.Required("name-label"),
            ["name_description"] = c.Params.Get("name-description") ?? "",
            ["MTU"] = mtu,
            ["other_config"] = new Dictionary<string, string>(),
            ["bridge"] = c.Params.Get("bridge") ?? "",
            ["managed"] = c.Params.Bool("managed", true),
            ["tags"] = new List<object?>(),
        });
        c.Printer.Line(await c.CallForStringAsync("network.get_uuid", ct, network));
    }

    /// <summary>xe's vif-create: mac= as given ("" lets the server choose, "random" makes a local unicast one).</summary>
    private static async Task VifCreateAsync(CommandContext c, CancellationToken ct)
    {
        var mac = c.Params.Get("mac") ?? "";
        if (mac == "random")
        {
            mac = RandomLocalMac();
        }

        var vm = await c.CallForStringAsync("VM.get_by_uuid", ct, c.Params.Required("vm-uuid"));
        var network = await c.CallForStringAsync("network.get_by_uuid", ct, c.Params.Required("network-uuid"));
        var mtu = XenValue.AsLong(await c.CallAsync("network.get_MTU", ct, network));
        var vif = await c.CallForStringAsync("VIF.create", ct, new Dictionary<string, object?>
        {
            ["device"] = c.Params.Required("device"),
            ["network"] = network,
            ["VM"] = vm,
            ["MAC"] = mac,
            ["MTU"] = mtu,
            ["other_config"] = new Dictionary<string, string>(),
            ["currently_attached"] = false,
            ["qos_algorithm_type"] = "",
            ["qos_algorithm_params"] = new Dictionary<string, string>(),
            ["locking_mode"] = "network_default",
            ["ipv4_allowed"] = new List<object?>(),
            ["ipv6_allowed"] = new List<object?>(),
            ["trunks"] = new List<object?>(),
        });
        c.Printer.Line(await c.CallForStringAsync("VIF.get_uuid", ct, vif));
    }

    /// <summary>A random locally administered unicast MAC, as xe's <c>random_mac_local</c>.</summary>
    public static string RandomLocalMac()
    {
        Span<byte> bytes = stackalloc byte[6];
        RandomNumberGenerator.Fill(bytes);
        bytes[0] = (byte)((bytes[0] | 0x02) & ~0x01);
        return string.Join(":", bytes.ToArray().Select(b => b.ToString("x2", CultureInfo.InvariantCulture)));
    }
}
