using Corral.Platform;

namespace Corral.Networking;

/// <summary>Linux bridges and taps, through iproute2.</summary>
public sealed class BridgeNetworking
{
    /// <summary>Creates the bridge if missing and brings it up. Idempotent.</summary>
    public async Task EnsureBridgeAsync(string bridge, CancellationToken cancellationToken)
    {
        ValidateName(bridge);
        if (!Exists(bridge))
        {
            var add = await CommandRunner.RunAsync("ip", ["link", "add", bridge, "type", "bridge"], cancellationToken);
            // Another agent in the same namespace may have made it in between; only a real failure matters.
            if (!add.Succeeded && !Exists(bridge))
            {
                throw new CommandFailedException($"ip link add {bridge} type bridge", add);
            }
        }

        await CommandRunner.RunCheckedAsync("ip", ["link", "set", bridge, "up"], cancellationToken);
    }

    /// <summary>Creates a tap (or reuses the one a previous agent left for a running VM) and attaches it to the bridge.</summary>
    public async Task EnsureTapAsync(string tap, string bridge, int mtu, CancellationToken cancellationToken)
    {
        ValidateName(tap);
        if (!Exists(tap))
        {
            await CommandRunner.RunCheckedAsync("ip", ["tuntap", "add", "dev", tap, "mode", "tap"], cancellationToken);
        }

        await CommandRunner.RunCheckedAsync("ip", ["link", "set", tap, "master", bridge, "mtu", mtu.ToString(System.Globalization.CultureInfo.InvariantCulture), "up"],
            cancellationToken);
    }

    /// <summary>Makes a network card a port of the bridge and brings it up (the card must carry no address of its own).</summary>
    public async Task AddPortAsync(string device, string bridge, CancellationToken cancellationToken)
    {
        ValidateName(device);
        ValidateName(bridge);
        await CommandRunner.RunCheckedAsync("ip", ["link", "set", "dev", device, "master", bridge, "up"], cancellationToken);
    }

    public async Task DeleteLinkAsync(string name, CancellationToken cancellationToken)
    {
        ValidateName(name);
        if (Exists(name))
        {
            await CommandRunner.RunAsync("ip", ["link", "del", name], cancellationToken);
        }
    }

    public static bool Exists(string name) => Directory.Exists($"/sys/class/net/{name}");

    /// <summary>Linux limits interface names to 15 bytes; a longer name would be silently refused later.</summary>
    public static void ValidateName(string name)
    {
        if (string.IsNullOrEmpty(name) || name.Length > 15 || name.Contains('/', StringComparison.Ordinal) || name.Contains(' ', StringComparison.Ordinal))
        {
            throw new ArgumentException($"'{name}' is not a valid Linux interface name", nameof(name));
        }
    }

    /// <summary>The tap of a VIF, named as Xen names them: vif&lt;domid&gt;.&lt;device&gt;.</summary>
    public static string TapName(long domid, string device) => $"vif{domid}.{device}";
}
