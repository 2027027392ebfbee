using Corral.Networking;
using Microsoft.Extensions.Options;

namespace Corral.Agent.Networking;

/// <summary>The host's network cards as the agent sees them (section <c>Corral:Network</c>).</summary>
public sealed class HostNetworkOptions
{
    /// <summary>Every card with a device on a bus (PCI, virtio, USB), found at each scan.</summary>
    public const string Auto = "auto";

    /// <summary>No card: the host has no PIFs (a test rig sharing its machine's network).</summary>
    public const string None = "none";

    /// <summary>
    /// Which links are the host's network cards, each a PIF: <c>auto</c>, <c>none</c>, or their names separated by spaces
    /// or commas (the lab's veth "cards" have no bus device, so the lab names them).
    /// </summary>
    public string PhysicalInterfaces { get; set; } = Auto;

    /// <summary>How often the agent reads its cards again (carrier, speed, addresses) and refreshes their records.</summary>
    public TimeSpan RefreshInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The DHCP client run for a PIF configured by DHCP (<c>PIF.reconfigure_ip</c>): ISC's dhclient.</summary>
    public string DhcpClient { get; set; } = "dhclient";

    /// <summary>The names given, or null for <see cref="Auto"/>; empty for <see cref="None"/>.</summary>
    public IReadOnlyList<string>? Names() => PhysicalInterfaces.Trim() switch
    {
        Auto or "" => null,
        None => [],
        var list => list.Split((char[])[' ', ',', '\t'], StringSplitOptions.RemoveEmptyEntries),
    };
}

/// <summary>Refuses, at start, interface names Linux would not take and a refresh interval that is not positive.</summary>
public sealed class HostNetworkOptionsValidation : IValidateOptions<HostNetworkOptions>
{
    public ValidateOptionsResult Validate(string? name, HostNetworkOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var problems = new List<string>();
        foreach (var device in options.Names() ?? [])
        {
            try
            {
                BridgeNetworking.ValidateName(device);
            }
            catch (ArgumentException)
            {
                problems.Add($"PhysicalInterfaces: '{device}' is not a Linux interface name (at most 15 characters, no '/' or spaces)");
            }
        }

        if (string.IsNullOrWhiteSpace(options.DhcpClient))
        {
            problems.Add("DhcpClient must name the DHCP client to run (dhclient)");
        }

        if (options.RefreshInterval <= TimeSpan.Zero)
        {
            problems.Add($"RefreshInterval must be positive, not {options.RefreshInterval}");
        }

        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems.Select(p => "Corral:Network: " + p));
    }
}
