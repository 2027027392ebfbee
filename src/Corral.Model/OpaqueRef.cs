namespace Corral.Model;

/// <summary>XenAPI object references: <c>OpaqueRef:&lt;uuid&gt;</c>, distinct from the object's own <c>uuid</c> field.</summary>
public static class OpaqueRef
{
    public const string Prefix = "OpaqueRef:";
    public const string Null = "OpaqueRef:NULL";

    public static string New() => Prefix + Guid.NewGuid().ToString("D");

    public static bool IsNull(string? reference) => string.IsNullOrEmpty(reference) || reference == Null;

    /// <summary>True when the text has the form of a reference; says nothing of whether the object exists.</summary>
    public static bool IsWellFormed(string? reference) =>
        reference is not null && reference.StartsWith(Prefix, StringComparison.Ordinal)
        && reference.Length > Prefix.Length && reference.IndexOfAny(['/', ' ', '\n']) < 0;

    public static string NewUuid() => Guid.NewGuid().ToString("D");

    public static bool IsUuid(string? text) => Guid.TryParseExact(text, "D", out _);

    /// <summary>
    /// A name-based uuid (RFC 9562 version 8, from SHA-256 of the name): the same for everyone who derives it from the
    /// same name, so that two writers creating "the" object of that name collide in one create instead of making two.
    /// </summary>
    public static string StableUuid(string name)
    {
        var hash = System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes("corral:" + name));
        hash[6] = (byte)((hash[6] & 0x0F) | 0x80);
        hash[8] = (byte)((hash[8] & 0x3F) | 0x80);
        return new Guid(hash.AsSpan(0, 16), bigEndian: true).ToString("D");
    }

    /// <summary>The reference of <see cref="StableUuid"/>.</summary>
    public static string Stable(string name) => Prefix + StableUuid(name);
}
