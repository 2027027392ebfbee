namespace Corral.Networking;

/// <summary>VIF MAC addresses: random, locally administered, unicast, fixed at VIF creation so they survive restarts and moves.</summary>
public static class MacAddress
{
    public static string NewRandom()
    {
        Span<byte> bytes = stackalloc byte[6];
        Random.Shared.NextBytes(bytes);
        bytes[0] = (byte)((bytes[0] & 0xFC) | 0x02); // locally administered, unicast
        return string.Join(':', bytes.ToArray().Select(b => b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture)));
    }

    public static bool IsValid(string mac) =>
        mac.Length == 17 && mac.Split(':').Length == 6 && mac.Split(':').All(p => p.Length == 2 && p.All(Uri.IsHexDigit))
        && (Convert.ToByte(mac[..2], 16) & 1) == 0;
}
