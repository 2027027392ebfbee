using System.Net;
using System.Net.Sockets;

namespace Corral.Networking;

/// <summary>IPv4 netmasks in the dotted form XenServer's PIF records use (255.255.255.0).</summary>
public static class Ipv4Netmask
{
    /// <summary>The prefix length of <paramref name="netmask"/> (24 for 255.255.255.0), or null when it is no netmask (not
    /// four dotted numbers, or its ones not contiguous from the left, or no ones at all).</summary>
    public static int? PrefixLength(string netmask)
    {
        if (!IPAddress.TryParse(netmask, out var address) || address.AddressFamily != AddressFamily.InterNetwork || netmask.Count(c => c == '.') != 3)
        {
            return null;
        }

        var bytes = address.GetAddressBytes();
        var bits = ((uint)bytes[0] << 24) | ((uint)bytes[1] << 16) | ((uint)bytes[2] << 8) | bytes[3];
        return bits != 0 && (~bits & (~bits + 1)) == 0 ? System.Numerics.BitOperations.PopCount(bits) : null;
    }
}
