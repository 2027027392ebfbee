using System.Globalization;
using Corral.Hypervisor;
using Corral.Model;

namespace Corral.Agent.Vms;

/// <summary>
/// What a guest agent's report becomes in VM_guest_metrics, where xapi puts what XenServer's tools write to xenstore:
/// <c>os_version</c>, <c>networks</c> and <c>PV_drivers_version</c> with xapi's keys; <c>disks</c> and <c>memory</c>
/// empty, as xapi leaves them (both "exist but have no data" since XenServer 5.0); and in <c>other</c>, beside xapi's
/// <c>feature-*</c> flags, what the guest reports that xapi has no field for, under <c>data-</c> keys as xapi names
/// what it copies from a guest's <c>data/</c> tree (<c>data-ts</c>): the file systems and the logged-in users.
/// docs/guests.md lists the keys.
/// </summary>
public static class GuestMetricsFields
{
    /// <summary>At most this many file systems and users are listed (their counts are always given in full).</summary>
    public const int MaxListed = 64;

    /// <summary>Sets a VM_guest_metrics record from the guest agent's report.</summary>
    public static void Apply(XenObject metrics, GuestAgentReport report)
    {
        var version = report.AgentVersion.Split('.');
        metrics.Set(XenApi.VMGuestMetrics.OsVersion, report.OsVersion);
        metrics.Set(XenApi.VMGuestMetrics.PVDriversVersion, new Dictionary<string, string>
        {
            ["major"] = version.ElementAtOrDefault(0) ?? "0",
            ["minor"] = version.ElementAtOrDefault(1) ?? "0",
            ["micro"] = version.ElementAtOrDefault(2) ?? "0",
            ["build"] = "0",
        });
        metrics.Set(XenApi.VMGuestMetrics.PVDriversUpToDate, true);
        metrics.Set(XenApi.VMGuestMetrics.PVDriversDetected, report.PvDrivers.Count > 0);
        metrics.Set(XenApi.VMGuestMetrics.Networks, report.Networks);
        metrics.Set(XenApi.VMGuestMetrics.Disks, new Dictionary<string, string>());
        metrics.Set(XenApi.VMGuestMetrics.Other, Other(report));
        metrics.Set(XenApi.VMGuestMetrics.LastUpdated, report.ReceivedUtc);
        metrics.Set(XenApi.VMGuestMetrics.Live, true);
        // A guest with the virtio drivers takes disks and cards plugged while it runs (PCI hot-plug through ACPI).
        metrics.Set(XenApi.VMGuestMetrics.CanUseHotplugVbd, report.PvDrivers.ContainsKey("virtio_blk") ? TristateType.Yes : TristateType.Unspecified);
        metrics.Set(XenApi.VMGuestMetrics.CanUseHotplugVif, report.PvDrivers.ContainsKey("virtio_net") ? TristateType.Yes : TristateType.Unspecified);
    }

    /// <summary>The <c>other</c> map: xapi's feature flags, the uptime, the file systems and the logged-in users.</summary>
    public static Dictionary<string, string> Other(GuestAgentReport report)
    {
        var other = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["feature-shutdown"] = "1",
            ["feature-reboot"] = "1",
            ["has-vendor-device"] = "0",
            ["platform-feature-multiprocessor-suspend"] = "0",
        };
        if (report.CanFreeze)
        {
            // xapi's flag for a guest that takes quiesced snapshots (VM.snapshot_with_quiesce).
            other["feature-quiesce"] = "1";
        }

        if (report.Uptime > TimeSpan.Zero)
        {
            // From the guest's /proc/uptime; a guest that does not say (Windows) has none.
            other["uptime"] = Number(report.Uptime.TotalSeconds);
        }

        if (report.Volumes is { } volumes)
        {
            AddVolumes(other, volumes);
        }

        if (report.Users is { } users)
        {
            AddUsers(other, users);
        }

        return other;
    }

    /// <summary>
    /// What decides whether a report is written: everything in it but the uptime and the free space, which change all
    /// the time and are written with the rest once a minute (the uptime's minute is part of it).
    /// </summary>
    public static string Fingerprint(GuestAgentReport report)
    {
        static string Flat(IEnumerable<KeyValuePair<string, string>> map) =>
            string.Join(";", map.OrderBy(k => k.Key, StringComparer.Ordinal).Select(kv => kv.Key + "=" + kv.Value));
        var steady = Other(report).Where(kv => kv.Key != "uptime" && !kv.Key.EndsWith("-free", StringComparison.Ordinal));
        return string.Join("|", Flat(report.Networks), Flat(report.OsVersion), Flat(report.PvDrivers), report.AgentVersion, Flat(steady),
            Number(report.Uptime.TotalMinutes));
    }

    private static void AddVolumes(Dictionary<string, string> other, IReadOnlyList<GuestVolume> volumes)
    {
        // By mount point, so that a file system keeps its number from one report to the next.
        var ordered = volumes.OrderBy(v => v.MountPoint, StringComparer.Ordinal).ToList();
        other["data-volumes"] = Number(ordered.Count);
        for (var i = 0; i < Math.Min(ordered.Count, MaxListed); i++)
        {
            var v = ordered[i];
            var key = "data-volume-" + Number(i);
            other[key + "-mount-point"] = v.MountPoint;
            other[key + "-filesystem"] = v.FileSystem;
            other[key + "-device"] = v.Device;
            if (v.SizeBytes is { } size)
            {
                other[key + "-size"] = Number(size);
            }

            if (v.FreeBytes is { } free)
            {
                other[key + "-free"] = Number(free);
            }
        }
    }

    private static void AddUsers(Dictionary<string, string> other, IReadOnlyList<GuestUser> users)
    {
        // In the order they logged in, each name once (the agent lists a user once, at their first login).
        var ordered = users.OrderBy(u => u.LoginTimeUtc).ThenBy(u => u.Name, StringComparer.Ordinal).ToList();
        other["data-users"] = Number(ordered.Count);
        for (var i = 0; i < Math.Min(ordered.Count, MaxListed); i++)
        {
            var key = "data-user-" + Number(i);
            other[key] = ordered[i].Name;
            other[key + "-login-time"] = XenDateTime.Format(ordered[i].LoginTimeUtc);
        }
    }

    private static string Number(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Number(double value) => Number((long)value);
}
