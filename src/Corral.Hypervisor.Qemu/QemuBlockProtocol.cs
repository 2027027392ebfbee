using System.Text.Json.Nodes;

namespace Corral.Hypervisor.Qemu;

/// <summary>
/// The protocol node under a disk's format node: a local file (<c>file</c>, filename), or, for an
/// <c>nfs://server/export/.../file</c> URL, QEMU's userspace <c>nfs</c> driver over libnfs (server {type inet, host},
/// path), which needs no kernel mount. QEMU's nfs driver mounts the path's directory and always speaks NFSv3.
/// </summary>
internal static class QemuBlockProtocol
{
    private const string NfsScheme = "nfs://";

    public static JsonObject For(string path)
    {
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
}
