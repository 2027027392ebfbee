using System.Globalization;
using System.Net;
using System.Text.Json;
using Corral.Platform;

namespace Corral.Networking;

/// <summary>An address of a link as iproute2 reports it; <see cref="Dynamic"/> when a DHCP client or autoconfiguration set it.</summary>
public sealed record LinkAddress(IPAddress Address, int PrefixLength, bool Dynamic, bool LinkLocal)
{
    public bool IsIPv4 => Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork;

    /// <summary>The IPv4 netmask in dotted form (255.255.255.0 for /24).</summary>
    public string Netmask
    {
        get
        {
            var mask = PrefixLength <= 0 ? 0u : uint.MaxValue << (32 - Math.Min(PrefixLength, 32));
            return new IPAddress([(byte)(mask >> 24), (byte)(mask >> 16), (byte)(mask >> 8), (byte)mask]).ToString();
        }
    }

    public override string ToString() => $"{Address}/{PrefixLength.ToString(CultureInfo.InvariantCulture)}";
}

/// <summary>A link of the host: what <c>ip -j addr show</c> says of it.</summary>
/// <param name="Kind">The kernel's kind of link (<c>bridge</c>, <c>veth</c>, <c>vlan</c>, <c>bond</c>...), empty for a plain card.</param>
/// <param name="Master">The bridge (or bond) the link is a port of, null when none.</param>
public sealed record HostLink(string Name, string Mac, int Mtu, bool AdminUp, string Kind, string? Master, IReadOnlyList<LinkAddress> Addresses)
{
    public bool IsBridge => Kind == "bridge";
}

/// <summary>What the kernel says of a network card's hardware (sysfs): carrier, speed, duplex, its bus identity.</summary>
public sealed record NicHardware(bool Carrier, long SpeedMbps, bool FullDuplex, string VendorId, string DeviceId, string PciBusPath);

/// <summary>
/// The host's network as iproute2 and sysfs show it: its links with their addresses, its default gateways (by link) and
/// its name servers.
/// </summary>
public sealed record HostNetworkState(
    IReadOnlyList<HostLink> Links,
    IReadOnlyDictionary<string, string> IPv4Gateways,
    IReadOnlyDictionary<string, string> IPv6Gateways,
    IReadOnlyList<string> NameServers)
{
    public HostLink? Find(string name) => Links.FirstOrDefault(l => l.Name == name);

    /// <summary>
    /// Where a network card's IP configuration lives: on the card itself, or (as XenServer and Proxmox hosts have it) on
    /// the bridge the card is a port of.
    /// </summary>
    public HostLink ConfiguredLinkOf(HostLink nic) =>
        nic.Addresses.Any(a => !a.LinkLocal) || nic.Master is null ? nic : Find(nic.Master) is { IsBridge: true } bridge ? bridge : nic;
}

/// <summary>Reads the host's links, addresses, routes and name servers (iproute2's JSON output, sysfs, resolv.conf).</summary>
public static class HostInterfaces
{
    public static async Task<HostNetworkState> ReadAsync(CancellationToken cancellationToken)
    {
        var links = await ReadLinksAsync(cancellationToken);
        var routes4 = await CommandRunner.RunAsync("ip", ["-j", "-4", "route", "show", "default"], cancellationToken);
        var routes6 = await CommandRunner.RunAsync("ip", ["-j", "-6", "route", "show", "default"], cancellationToken);
        var resolv = File.Exists("/etc/resolv.conf") ? await File.ReadAllTextAsync("/etc/resolv.conf", cancellationToken) : "";
        return new HostNetworkState(links, ParseGateways(routes4.Succeeded ? routes4.StandardOutput : ""),
            ParseGateways(routes6.Succeeded ? routes6.StandardOutput : ""), ParseNameServers(resolv));
    }

    /// <summary>The host's links with their addresses, without its routes and name servers.</summary>
    public static async Task<IReadOnlyList<HostLink>> ReadLinksAsync(CancellationToken cancellationToken) =>
        ParseLinks(await CommandRunner.RunCheckedAsync("ip", ["-d", "-j", "addr", "show"], cancellationToken));

    /// <summary>The links of <c>ip -d -j addr show</c>.</summary>
    public static IReadOnlyList<HostLink> ParseLinks(string json)
    {
        using var document = JsonDocument.Parse(string.IsNullOrWhiteSpace(json) ? "[]" : json);
        var links = new List<HostLink>();
        foreach (var link in document.RootElement.EnumerateArray())
        {
            var flags = link.TryGetProperty("flags", out var f) ? f.EnumerateArray().Select(x => x.GetString()).ToList() : [];
            var addresses = new List<LinkAddress>();
            if (link.TryGetProperty("addr_info", out var infos))
            {
                foreach (var info in infos.EnumerateArray())
                {
                    if (info.TryGetProperty("local", out var local) && IPAddress.TryParse(local.GetString(), out var address) && info.TryGetProperty("prefixlen", out var prefix))
                    {
                        var dynamic = info.TryGetProperty("dynamic", out var d) && d.ValueKind == JsonValueKind.True;
                        var scope = info.TryGetProperty("scope", out var s) ? s.GetString() : "global";
                        addresses.Add(new LinkAddress(address, prefix.GetInt32(), dynamic, scope == "link"));
                    }
                }
            }

            links.Add(new HostLink(
                String(link, "ifname"),
                String(link, "address"),
                link.TryGetProperty("mtu", out var mtu) ? mtu.GetInt32() : 1500,
                flags.Contains("UP"),
                link.TryGetProperty("linkinfo", out var linkInfo) && linkInfo.TryGetProperty("info_kind", out var kind) ? kind.GetString() ?? "" : "",
                link.TryGetProperty("master", out var master) ? master.GetString() : null,
                addresses));
        }

        return links;
    }

    /// <summary>The default routes of <c>ip -j route show default</c>: the gateway by the link it leaves through.</summary>
    public static IReadOnlyDictionary<string, string> ParseGateways(string json)
    {
        using var document = JsonDocument.Parse(string.IsNullOrWhiteSpace(json) ? "[]" : json);
        var gateways = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var route in document.RootElement.EnumerateArray())
        {
            if (route.TryGetProperty("gateway", out var gateway) && route.TryGetProperty("dev", out var dev))
            {
                gateways.TryAdd(dev.GetString() ?? "", gateway.GetString() ?? "");
            }
        }

        return gateways;
    }

    /// <summary>The <c>nameserver</c> lines of resolv.conf, in order.</summary>
    public static IReadOnlyList<string> ParseNameServers(string resolvConf) =>
        resolvConf.Split('\n')
            .Select(l => l.Trim().Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries))
            .Where(w => w.Length >= 2 && w[0] == "nameserver")
            .Select(w => w[1])
            .ToList();

    /// <summary>A network card's hardware as sysfs shows it; null when the link is gone.</summary>
    public static NicHardware? ReadHardware(string device, string sysClassNet = "/sys/class/net")
    {
        BridgeNetworking.ValidateName(device);
        var directory = Path.Combine(sysClassNet, device);
        if (!Directory.Exists(directory))
        {
            return null;
        }

        var speed = long.TryParse(Read(directory, "speed"), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var s) && s > 0 ? s : 0;
        var (vendor, model, pci) = BusIdentity(Path.Combine(directory, "device"));
        return new NicHardware(Read(directory, "carrier") == "1", speed, Read(directory, "duplex") == "full", vendor, model, pci);
    }

    /// <summary>
    /// The links an administrator's host has as network cards: those with a device on a bus (PCI, virtio, USB), which
    /// bridges, VLANs, bonds, taps and veths have not.
    /// </summary>
    public static bool HasBusDevice(string device, string sysClassNet = "/sys/class/net") =>
        Directory.Exists(Path.Combine(sysClassNet, device, "device"));

    /// <summary>
    /// The card's PCI vendor and device ids (0x-less, four hex digits, as xapi shows them) and its PCI address; a
    /// virtio card's are its PCI function's, one level up.
    /// </summary>
    private static (string Vendor, string Device, string PciBusPath) BusIdentity(string deviceLink)
    {
        if (!Directory.Exists(deviceLink))
        {
            return ("", "", "");
        }

        var device = new DirectoryInfo(deviceLink).ResolveLinkTarget(true)?.FullName ?? deviceLink;
        foreach (var candidate in new[] { device, Path.GetDirectoryName(device) ?? device })
        {
            var vendor = Read(candidate, "vendor");
            if (vendor.Length > 0 && File.Exists(Path.Combine(candidate, "config")))
            {
                return (Hex(vendor), Hex(Read(candidate, "device")), Path.GetFileName(candidate));
            }
        }

        return ("", "", "");
    }

    private static string Hex(string value) => value.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? value[2..] : value;

    private static string Read(string directory, string name)
    {
        try
        {
            return File.ReadAllText(Path.Combine(directory, name)).Trim();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Some attributes cannot be read while the link is down (speed, duplex: EINVAL).
            return "";
        }
    }

    private static string String(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) ? value.GetString() ?? "" : "";
}
