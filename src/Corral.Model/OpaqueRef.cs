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
}
