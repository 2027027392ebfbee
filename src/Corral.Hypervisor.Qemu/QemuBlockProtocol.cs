using System.Globalization;
using System.Text.Json.Nodes;

namespace Corral.Hypervisor.Qemu;

/// <summary>
/// The protocol node under a disk's format node: a local file (<c>file</c>, filename), or, for an
/// <c>nfs://server/export/.../file</c> URL, QEMU's userspace <c>nfs</c> driver over libnfs (server {type inet, host},
/// path), which needs no kernel mount. QEMU's nfs driver mounts the path's directory and always speaks NFSv3.
/// An <c>iscsi://[user%password@]host:port/iqn/lun#offset+size</c> path is an extent of an iSCSI SR's LUN: QEMU's
/// userspace <c>iscsi</c> driver (libiscsi) opens the LUN and the raw format node's offset and size bound the guest to
/// the extent.
/// </summary>
internal static class QemuBlockProtocol
{
    private const string NfsScheme = "nfs://";
    private const string IscsiScheme = "iscsi://";

    public static JsonObject For(string path)
    {
        if (path.StartsWith(IscsiScheme, StringComparison.Ordinal))
        {
            return Iscsi(Split(path).File);
        }

        if (!path.StartsWith(NfsScheme, StringComparison.Ordinal))
        {
            return new JsonObject { ["driver"] = "file", ["filename"] = path };
        }

        var rest = path[NfsScheme.Length..];
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0 || rest.Contains('?', StringComparison.Ordinal))
        {
            throw new ArgumentException($"an nfs:// disk is nfs://server/path: {path}", nameof(path));
        }

        return new JsonObject
        {
            ["driver"] = "nfs",
            ["server"] = new JsonObject { ["type"] = "inet", ["host"] = rest[..slash] },
            ["path"] = rest[slash..],
        };
    }

    /// <summary>
    /// The file a -drive opens and the format options that bound it: an iSCSI extent's LUN URL (which QEMU's iscsi
    /// driver parses, CHAP credentials included) and ",offset=N,size=M"; any other path as it is, with none.
    /// </summary>
    public static (string File, string Options) Split(string path)
    {
        if (!path.StartsWith(IscsiScheme, StringComparison.Ordinal))
        {
            return (path, "");
        }

        var (url, offset, size) = Extent(path);
        return (url, $",offset={offset.ToString(CultureInfo.InvariantCulture)},size={size.ToString(CultureInfo.InvariantCulture)}");
    }

    /// <summary>Bounds a raw format node to an iSCSI extent (nothing for other paths).</summary>
    public static void AddExtent(JsonObject formatNode, string path)
    {
        if (path.StartsWith(IscsiScheme, StringComparison.Ordinal))
        {
            var (_, offset, size) = Extent(path);
            formatNode["offset"] = offset;
            formatNode["size"] = size;
        }
    }

    private static (string Url, long Offset, long Size) Extent(string path)
    {
        var hash = path.LastIndexOf('#');
        var range = hash < 0 ? [] : path[(hash + 1)..].Split('+');
        if (range.Length != 2
            || !long.TryParse(range[0], NumberStyles.None, CultureInfo.InvariantCulture, out var offset)
            || !long.TryParse(range[1], NumberStyles.None, CultureInfo.InvariantCulture, out var size))
        {
            throw new ArgumentException($"an iscsi:// disk is iscsi://host:port/iqn/lun#offset+size: {path}", nameof(path));
        }

        return (path[..hash], offset, size);
    }

    /// <summary>The iscsi protocol node for a LUN URL without credentials (hot-plug; a CHAP LUN needs a secret object: not yet).</summary>
    private static JsonObject Iscsi(string url)
    {
        var rest = url[IscsiScheme.Length..];
        var parts = rest.Split('/');
        if (parts.Length != 3 || rest.Contains('@', StringComparison.Ordinal) || !int.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out var lun))
        {
            throw new ArgumentException($"a hot-plugged iscsi:// disk is iscsi://host:port/iqn/lun, without CHAP: {url}", nameof(url));
        }

        return new JsonObject
        {
            ["driver"] = "iscsi",
            ["transport"] = "tcp",
            ["portal"] = parts[0],
            ["target"] = Uri.UnescapeDataString(parts[1]),
            ["lun"] = lun,
        };
    }
}
