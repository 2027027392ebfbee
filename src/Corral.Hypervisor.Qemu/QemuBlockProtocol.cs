using System.Globalization;
using System.Text.Json.Nodes;

namespace Corral.Hypervisor.Qemu;

/// <summary>
/// The protocol node under a disk's format node: a local file (<c>file</c>, filename), or, for an
/// <c>nfs://server/export/.../file</c> URL, QEMU's userspace <c>nfs</c> driver over libnfs (server {type inet, host},
/// path), which needs no kernel mount. QEMU's nfs driver mounts the path's directory and always speaks NFSv3.
/// An <c>iscsi://[user%password@]host:port/iqn/lun#offset+size</c> path is an extent of an iSCSI SR's LUN: QEMU's
/// userspace <c>iscsi</c> driver (libiscsi) opens the LUN and the raw format node's offset and size bound the guest to
/// the extent. A CHAP password goes to QEMU in a secret object (a root-only file, or QMP), never on its command line.
/// </summary>
internal static class QemuBlockProtocol
{
    private const string NfsScheme = "nfs://";
    private const string IscsiScheme = "iscsi://";

    /// <summary>
    /// The protocol node for <paramref name="path"/>; a CHAP LUN's names its password by the QEMU secret object
    /// <paramref name="secretId"/>, which the caller adds first (<see cref="Credentials"/>).
    /// </summary>
    public static JsonObject For(string path, string? secretId = null)
    {
        if (Iscsi(path) is { } iscsi)
        {
            var node = new JsonObject
            {
                ["driver"] = "iscsi",
                ["transport"] = "tcp",
                ["portal"] = iscsi.Portal,
                ["target"] = iscsi.Target,
                ["lun"] = iscsi.Lun,
            };
            if (iscsi.User is { } user)
            {
                node["user"] = user;
                node["password-secret"] = secretId ?? throw new ArgumentException($"a CHAP iSCSI disk needs a secret object: {Redacted(path)}", nameof(secretId));
            }

            return node;
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
    /// What a -drive opens (after its <c>if</c> and <c>id</c>): <c>,file=&lt;path&gt;,format=&lt;format&gt;</c>; for an
    /// iSCSI extent, the raw node's offset and size and the iscsi node's options, its CHAP password named by the secret
    /// object <paramref name="secretId"/> (which the command line gets from a root-only file), never written on the
    /// command line itself, which any user of the host can read in <c>/proc</c>.
    /// </summary>
    public static string DriveOptions(string path, string format, string secretId)
    {
        if (Iscsi(path) is not { } iscsi)
        {
            return $",file={QemuCommandLine.Escape(path)},format={format}";
        }

        var options = $",format={format},offset={N(iscsi.Offset)},size={N(iscsi.Size)},file.driver=iscsi,file.transport=tcp," +
                      $"file.portal={QemuCommandLine.Escape(iscsi.Portal)},file.target={QemuCommandLine.Escape(iscsi.Target)},file.lun={N(iscsi.Lun)}";
        return iscsi.User is { } user ? options + $",file.user={QemuCommandLine.Escape(user)},file.password-secret={secretId}" : options;
    }

    /// <summary>The CHAP credentials of an iSCSI disk's path; null for any other disk or a LUN without CHAP.</summary>
    public static (string User, string Password)? Credentials(string path) =>
        Iscsi(path) is { User: { } user } iscsi ? (user, iscsi.Password ?? "") : null;

    /// <summary>The path with an iSCSI URL's CHAP password left out, for logs and messages.</summary>
    public static string Redacted(string path) =>
        Iscsi(path) is { User: { } user } iscsi ? $"{IscsiScheme}{user}@{iscsi.Portal}/{iscsi.Target}/{N(iscsi.Lun)}#{N(iscsi.Offset)}+{N(iscsi.Size)}" : path;

    /// <summary>An iSCSI extent a disk's path names: <c>iscsi://[user%password@]host:port/iqn/lun#offset+size</c>.</summary>
    private sealed record IscsiExtent(string Portal, string Target, int Lun, long Offset, long Size, string? User, string? Password);

    private static IscsiExtent? Iscsi(string path)
    {
        if (!path.StartsWith(IscsiScheme, StringComparison.Ordinal))
        {
            return null;
        }

        var (url, offset, size) = Extent(path);
        var rest = url[IscsiScheme.Length..];
        string? user = null, password = null;
        // libiscsi's form: user%password@ (the driver refuses a user holding '%', '@' or '/', a password holding '@' or '/').
        if (rest.IndexOf('@', StringComparison.Ordinal) is var at and > 0 && at < rest.IndexOf('/', StringComparison.Ordinal))
        {
            var credentials = rest[..at];
            var percent = credentials.IndexOf('%', StringComparison.Ordinal);
            (user, password) = percent < 0 ? (credentials, "") : (credentials[..percent], credentials[(percent + 1)..]);
            rest = rest[(at + 1)..];
        }

        var parts = rest.Split('/');
        if (parts.Length != 3 || !int.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out var lun))
        {
            throw new ArgumentException($"an iscsi:// disk is iscsi://[user%password@]host:port/iqn/lun#offset+size: {Scrub(path)}", nameof(path));
        }

        return new IscsiExtent(parts[0], Uri.UnescapeDataString(parts[1]), lun, offset, size, user, password);
    }

    private static string Scrub(string path) => path.IndexOf('@', StringComparison.Ordinal) is var at and > 0 ? IscsiScheme + "…" + path[at..] : path;

    private static string N(long value) => value.ToString(CultureInfo.InvariantCulture);

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
            throw new ArgumentException($"an iscsi:// disk is iscsi://[user%password@]host:port/iqn/lun#offset+size: {Scrub(path)}", nameof(path));
        }

        return (path[..hash], offset, size);
    }
}
