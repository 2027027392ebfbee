using Corral.Model;
using Corral.Networking;
using Corral.Platform;

namespace Corral.Agent.Networking;

/// <summary>
/// Gives a link of the host the IPv4 configuration of its PIF, as XenServer's network daemon does for
/// <c>PIF.reconfigure_ip</c>: a static address (iproute2), an address leased by DHCP (ISC's <c>dhclient</c>, Debian's
/// DHCP client, running on for the lease's renewals with Corral's script, which sets the leased address and its lifetime
/// on the link and nothing else: the host's default route and resolver are its management interface's), or none.
/// Addresses of other families and link-local ones are left alone.
/// </summary>
/// <param name="dhcpClient">The DHCP client to run (ISC dhclient).</param>
/// <param name="script">The script dhclient runs on each lease event (shipped beside the agent).</param>
/// <param name="directory">Where each link's client keeps its pid and lease files.</param>
public sealed class PifAddressing(string dhcpClient, string script, string directory)
{
    /// <summary>Gives <paramref name="link"/> the configuration <paramref name="settings"/> says, whatever it had.</summary>
    public async Task ApplyAsync(string link, PifAddressSettings settings, CancellationToken cancellationToken)
    {
        BridgeNetworking.ValidateName(link);
        await ReleaseDhcpAsync(link, cancellationToken);
        await CommandRunner.RunCheckedAsync("ip", ["link", "set", "dev", link, "up"], cancellationToken);
        await CommandRunner.RunCheckedAsync("ip", ["-4", "addr", "flush", "dev", link, "scope", "global"], cancellationToken);
        switch (settings.Mode)
        {
            case IpConfigurationMode.Static:
                await CommandRunner.RunCheckedAsync("ip", ["-4", "addr", "add", $"{settings.IP}/{PrefixLength(settings.Netmask)}", "dev", link], cancellationToken);
                break;
            case IpConfigurationMode.DHCP:
                await StartDhcpAsync(link, cancellationToken);
                break;
        }
    }

    /// <summary>
    /// At start: what <paramref name="settings"/> says, where the link no longer has it (a static address gone, the DHCP
    /// client not running); nothing is touched where it has. True if something was applied.
    /// </summary>
    public async Task<bool> EnsureAsync(HostLink link, PifAddressSettings settings, CancellationToken cancellationToken)
    {
        var global = link.Addresses.Where(a => a.IsIPv4 && !a.LinkLocal).ToList();
        var holds = settings.Mode switch
        {
            IpConfigurationMode.Static => global.Count == 1 && global[0].Address.ToString() == settings.IP
                                          && global[0].PrefixLength == PrefixLength(settings.Netmask),
            IpConfigurationMode.DHCP => DhcpClientPid(link.Name) is not null,
            _ => global.Count == 0 && DhcpClientPid(link.Name) is null,
        };
        if (holds)
        {
            return false;
        }

        await ApplyAsync(link.Name, settings, cancellationToken);
        return true;
    }

    /// <summary>The pid of the DHCP client running for <paramref name="link"/>, or null when none runs.</summary>
    public int? DhcpClientPid(string link)
    {
        var pidFile = File(link, "pid");
        if (!System.IO.File.Exists(pidFile) || !int.TryParse(System.IO.File.ReadAllText(pidFile).Trim(), out var pid))
        {
            return null;
        }

        // Its command line names this client's pid file: a pid the kernel gave to another process since is not it.
        var cmdline = $"/proc/{pid}/cmdline";
        return System.IO.File.Exists(cmdline) && System.IO.File.ReadAllText(cmdline).Split('\0').Contains(pidFile) ? pid : null;
    }

    /// <summary>The prefix length of a netmask in dotted form (255.255.255.0 is 24); the API refused any other.</summary>
    public static int PrefixLength(string netmask) =>
        DottedIPv4.NetmaskPrefixLength(netmask) ?? throw new ArgumentException($"'{netmask}' is not a netmask", nameof(netmask));

    private async Task StartDhcpAsync(string link, CancellationToken cancellationToken)
    {
        if (!System.IO.File.Exists(script))
        {
            throw new FileNotFoundException($"the DHCP client's script {script} is missing", script);
        }

        Directory.CreateDirectory(directory);
        // -nw: into the background at once; it keeps the lease (renewing it) until released.
        await CommandRunner.RunCheckedAsync(dhcpClient, ["-4", "-nw", .. ClientFiles(link), link], cancellationToken, TimeSpan.FromSeconds(30));
    }

    /// <summary>The running client, if any, releases its lease and stops (<c>-r</c>), as ifdown does.</summary>
    private async Task ReleaseDhcpAsync(string link, CancellationToken cancellationToken)
    {
        if (DhcpClientPid(link) is not null)
        {
            await CommandRunner.RunCheckedAsync(dhcpClient, ["-4", "-r", .. ClientFiles(link), link], cancellationToken, TimeSpan.FromSeconds(30));
        }
    }

    private string[] ClientFiles(string link) => ["-pf", File(link, "pid"), "-lf", File(link, "leases"), "-sf", script];

    private string File(string link, string kind) => System.IO.Path.Combine(directory, $"{link}.{kind}");
}
