using System.Text.Json.Nodes;

namespace Corral.Hypervisor.Qemu.GuestAgent;

/// <summary>
/// Which paravirtual (virtio) drivers the guest really runs, seen from the host: a virtio device whose guest driver
/// finished setting it up has <c>DRIVER_OK</c> in its status (QMP <c>x-query-virtio</c> and
/// <c>x-query-virtio-status</c>). Keyed by the Linux driver's module name, as the guest tools report them
/// (<c>virtio_net</c>, <c>virtio_blk</c>, <c>virtio_console</c>...); what Windows' virtio-win drivers bind shows the same way.
/// </summary>
public static class VirtioDrivers
{
    private static readonly Dictionary<string, string> ModuleByDevice = new(StringComparer.Ordinal)
    {
        ["virtio-net"] = "virtio_net",
        ["virtio-blk"] = "virtio_blk",
        ["virtio-serial"] = "virtio_console",
        ["virtio-scsi"] = "virtio_scsi",
        ["virtio-balloon"] = "virtio_balloon",
        ["virtio-rng"] = "virtio_rng",
        ["virtio-gpu"] = "virtio_gpu",
    };

    /// <summary>The drivers in use, each "1"; empty when none has set its device up (no drivers, or not booted yet).</summary>
    public static async Task<IReadOnlyDictionary<string, string>> InUseAsync(Func<string, JsonObject?, CancellationToken, Task<JsonNode?>> qmp,
        CancellationToken cancellationToken)
    {
        var drivers = new SortedDictionary<string, string>(StringComparer.Ordinal);
        var devices = await qmp("x-query-virtio", null, cancellationToken) as JsonArray ?? [];
        foreach (var device in devices.OfType<JsonObject>())
        {
            if (device["path"] is not JsonValue path || device["name"] is not JsonValue name || !path.TryGetValue<string>(out var p)
                || !name.TryGetValue<string>(out var n))
            {
                continue;
            }

            var status = await qmp("x-query-virtio-status", new JsonObject { ["path"] = p }, cancellationToken) as JsonObject;
            if (DriverReady(status))
            {
                drivers[ModuleByDevice.GetValueOrDefault(n, n.Replace('-', '_'))] = "1";
            }
        }

        return drivers;
    }

    /// <summary>Whether a device's status (<c>x-query-virtio-status</c>) says its guest driver is ready.</summary>
    public static bool DriverReady(JsonObject? status) =>
        (status?["status"]?["statuses"] as JsonArray ?? []).OfType<JsonValue>()
            .Any(s => s.TryGetValue<string>(out var text) && text.StartsWith("VIRTIO_CONFIG_S_DRIVER_OK", StringComparison.Ordinal));
}
