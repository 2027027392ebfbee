using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace Corral.Auth.Ldap;

/// <summary>
/// Windows security identifiers (SIDs) as Active Directory stores them (<c>objectSid</c>, <c>tokenGroups</c>: binary)
/// and as xapi's AD subjects name them (<c>S-1-5-21-...</c>): revision, identifier authority, sub-authorities.
/// </summary>
public static class SecurityIdentifiers
{
    /// <summary>The string form of a binary SID; null when the bytes are not one.</summary>
    public static string? ToText(ReadOnlySpan<byte> sid)
    {
        if (sid.Length < 8 || sid[0] != 1 || sid.Length != 8 + (4 * sid[1]))
        {
            return null;
        }

        long authority = 0;
        foreach (var b in sid[2..8])
        {
            authority = (authority << 8) | b;
        }

        var text = new StringBuilder("S-1-").Append(authority.ToString(CultureInfo.InvariantCulture));
        for (var i = 0; i < sid[1]; i++)
        {
            text.Append('-').Append(BinaryPrimitives.ReadUInt32LittleEndian(sid.Slice(8 + (4 * i), 4)).ToString(CultureInfo.InvariantCulture));
        }

        return text.ToString();
    }

    /// <summary>Whether <paramref name="text"/> is a SID's string form (what a subject identifier of an AD pool is).</summary>
    public static bool IsSid(string text)
    {
        var parts = text.Split('-');
        return parts.Length is >= 3 and <= 18 && parts[0] == "S" && parts[1] == "1"
            && parts.Skip(2).All(p => p.Length is > 0 and <= 15 && p.All(char.IsAsciiDigit));
    }
}
