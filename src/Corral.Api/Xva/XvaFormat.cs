using System.Globalization;
using System.IO.Hashing;
using System.Security.Cryptography;

namespace Corral.Api.Xva;

/// <summary>
/// The facts of xapi's XVA format (export.ml, stream_vdi.ml): a tar whose first member is <c>ova.xml</c>, then each
/// disk as 1 MiB chunks named <c>&lt;id&gt;/&lt;8-digit number&gt;</c>, each followed by its checksum member.
/// </summary>
public static class XvaFormat
{
    public const string OvaXml = "ova.xml";

    /// <summary>Each disk travels in chunks of this size (the last may be shorter).</summary>
    public const int ChunkSize = 1024 * 1024;

    /// <summary>xapi's checksum member now: XXH64 of the chunk, 16 upper-case hex digits.</summary>
    public const string XxHashExtension = ".xxhash";

    /// <summary>Older exports' checksum member: SHA-1 of the chunk, lower-case hex. Still accepted on import.</summary>
    public const string Sha1Extension = ".checksum";

    /// <summary>xapi's <c>export_vsn</c>: 2, inline checksums and no checksum table at the end.</summary>
    public const long ExportVersion = 2;

    /// <summary>The XML nesting an <c>ova.xml</c> may reach (records hold maps of maps at most).</summary>
    public const int MaxNesting = 64;

    public static string ChunkName(string prefix, long number) => $"{prefix}/{number.ToString("D8", CultureInfo.InvariantCulture)}";

    public static string XxHash(ReadOnlySpan<byte> data) => XxHash64.HashToUInt64(data).ToString("X16", CultureInfo.InvariantCulture);

#pragma warning disable CA5350 // Not for security: the integrity check older xapi exports carry, which an import must read.
    public static string Sha1(ReadOnlySpan<byte> data) => Convert.ToHexStringLower(SHA1.HashData(data));
#pragma warning restore CA5350

    /// <summary>The checksum a member of <paramref name="extension"/> holds for <paramref name="data"/>; null for an unknown kind.</summary>
    public static string? Checksum(string extension, ReadOnlySpan<byte> data) => extension switch
    {
        XxHashExtension => XxHash(data),
        Sha1Extension => Sha1(data),
        _ => null,
    };
}

/// <summary>How an export is compressed, as <c>use_compression=</c> names it (xapi: true and gzip are gzip).</summary>
public enum XvaCompression
{
    None,
    Gzip,
    Zstd,
}

public static class XvaCompressions
{
    /// <summary>xapi's reading of <c>use_compression</c>: <c>true</c>/<c>gzip</c>, <c>zstd</c>, anything else none.</summary>
    public static XvaCompression Parse(string? value) => value switch
    {
        "true" or "gzip" => XvaCompression.Gzip,
        "zstd" => XvaCompression.Zstd,
        _ => XvaCompression.None,
    };
}
