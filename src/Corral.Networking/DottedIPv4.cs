using System.Net;
using System.Net.Sockets;

namespace Corral.Networking;

/// <summary>IPv4 addresses and netmasks in the dotted form XenServer's PIF records use (10.0.0.5, 255.255.255.0).</summary>
public static class DottedIPv4
{
    /// <summary>Whether <paramref name="text"/> is an IPv4 address written as four dotted numbers.</summary>
    public static bool IsAddress(string text) => Parse(text) is not null;

    /// <summary>The prefix length of <paramref name="netmask"/> (24 for 255.255.255.0), or null when it is no netmask (not
    /// four dotted numbers, or its ones not contiguous from the left, or no ones at all).</summary>
    public static int? NetmaskPrefixLength(string netmask)
    {
        if (Parse(netmask) is not { } address)
        {
            return null;
        }

        var bytes = address.GetAddressBytes();
        var bits = ((uint)bytes[0] << 24) | ((uint)bytes[1] << 16) | ((uint)bytes[2] << 8) | bytes[3];
        return bits != 0 && (~bits & (~bits + 1)) == 0 ? System.Numerics.BitOperations.PopCount(bits) : null;
    }

    private static IPAddress? Parse(string text) =>
        IPAddress.TryParse(text, out var address) && address.AddressFamily == AddressFamily.InterNetwork && text.Count(c => c == '.') == 3 ? address : null;
}
