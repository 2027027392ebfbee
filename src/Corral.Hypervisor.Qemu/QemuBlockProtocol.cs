using System.Globalization;
using System.Text.Json.Nodes;
using Corral.Platform;

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
                ["target"] = iscsi.TargetIqn,
                ["lun"] = iscsi.Lun,
            };
            if (iscsi.Initiator is { } initiator)
            {
                node["initiator-name"] = initiator;
            }

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
                      $"file.portal={QemuCommandLine.Escape(iscsi.Portal)},file.target={QemuCommandLine.Escape(iscsi.TargetIqn)},file.lun={N(iscsi.Lun)}";
        if (iscsi.Initiator is { } initiator)
        {
            options += $",file.initiator-name={QemuCommandLine.Escape(initiator)}";
        }

        return iscsi.User is { } user ? options + $",file.user={QemuCommandLine.Escape(user)},file.password-secret={secretId}" : options;
    }

    /// <summary>The CHAP credentials of an iSCSI disk's path; null for any other disk or a LUN without CHAP.</summary>
    public static (string User, string Password)? Credentials(string path) =>
        Iscsi(path) is { User: { } user } iscsi ? (user, iscsi.Password ?? "") : null;

    /// <summary>The path with an iSCSI URL's CHAP password left out, for logs and messages.</summary>
    public static string Redacted(string path) =>
        Iscsi(path)?.ToString() ?? path;

    /// <summary>The iSCSI extent a disk's path names (<see cref="IscsiExtentPath"/>); null for any other disk.</summary>
    private static IscsiExtentPath? Iscsi(string path) =>
        !path.StartsWith(IscsiExtentPath.Scheme, StringComparison.Ordinal) ? null
        : IscsiExtentPath.TryParse(path)
          ?? throw new ArgumentException($"an iscsi:// disk is iscsi://[user%password@]host:port/iqn/lun#offset+size: {Scrub(path)}", nameof(path));

    private static string Scrub(string path) => path.IndexOf('@', StringComparison.Ordinal) is var at and > 0 ? IscsiExtentPath.Scheme + "…" + path[at..] : path;

    private static string N(long value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>Bounds a raw format node to an iSCSI extent (nothing for other paths).</summary>
    public static void AddExtent(JsonObject formatNode, string path)
    {
        if (Iscsi(path) is { } iscsi)
        {
            formatNode["offset"] = iscsi.Offset;
            formatNode["size"] = iscsi.Size;
        }
    }
}
