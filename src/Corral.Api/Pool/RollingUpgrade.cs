using System.Globalization;
using Corral.Model;

namespace Corral.Api.Pool;

/// <summary>
/// A pool whose hosts run different builds of Corral is in a rolling upgrade, and xapi's rules for one apply
/// (ocaml/xapi/helpers.ml, Checks.RPU and Checks.Migration; db_gc.ml's detect_rolling_upgrade): the pool says so in
/// <c>other_config:rolling_upgrade_in_progress</c> (which clients show and the allowed-operations rules read), a VM
/// never moves live to a host older than the one it runs on (NOT_SUPPORTED_DURING_UPGRADE), and a VM started without a
/// host goes to one of the newest. xapi compares its platform and xapi versions; Corral compares its own build, the
/// <c>corral_version</c> of <c>software_version</c> (the installed package's version, whose last figure is the build).
/// </summary>
public static class RollingUpgrade
{
    /// <summary>The key of <c>pool.other_config</c> that xapi sets ("true") while its hosts' versions differ.</summary>
    public const string InProgressKey = "rolling_upgrade_in_progress";

    /// <summary>The host's build, as four numbers (missing ones 0): "0.1.0.1240+a25f12d" is 0.1.0.1240.</summary>
    public static Version BuildOf(XenObject host) =>
        Parse(host.Get(XenApi.Host.SoftwareVersion).GetValueOrDefault(XenServerVersion.CorralVersionKey));

    /// <summary>
    /// The numbers before any '+' (source revision) or '-' / '~' (pre-release): up to four, missing ones 0, so that
    /// "0.1.0" and "0.1.0.0" are one build. A host that reports none counts as the oldest (0.0.0.0).
    /// </summary>
    public static Version Parse(string? corralVersion)
    {
        var numbers = new int[4];
        var text = (corralVersion ?? "").Split('+', '-', '~')[0];
        var parts = text.Split('.');
        for (var i = 0; i < Math.Min(parts.Length, numbers.Length); i++)
        {
            if (!int.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out numbers[i]))
            {
                return new Version(0, 0, 0, 0);
            }
        }

        return new Version(numbers[0], numbers[1], numbers[2], numbers[3]);
    }

    /// <summary>Whether the hosts run more than one build.</summary>
    public static bool InProgress(IEnumerable<XenObject> hosts) => hosts.Select(BuildOf).Distinct().Skip(1).Any();

    /// <summary>The newest build among the hosts (0.0.0.0 with none).</summary>
    public static Version Newest(IEnumerable<XenObject> hosts) => hosts.Select(BuildOf).DefaultIfEmpty(new Version(0, 0, 0, 0)).Max()!;

    /// <summary>
    /// NOT_SUPPORTED_DURING_UPGRADE when <paramref name="destination"/> runs an older build than
    /// <paramref name="source"/>: what the newer host runs the VM with (its devices, its migration stream) may be
    /// more than the older one knows, so a VM only moves up or across during an upgrade, as xapi's pool_migrate,
    /// migrate_send and host.evacuate allow.
    /// </summary>
    public static void CheckNotDecreasing(XenObject source, XenObject destination)
    {
        if (BuildOf(destination) < BuildOf(source))
        {
            throw new XenApiException(ErrorCodes.NotSupportedDuringUpgrade);
        }
    }

    /// <summary>
    /// The hosts a VM started without a host may go to: all of them, or during an upgrade only those running the
    /// newest build in the pool (xapi's host_has_highest_version_in_pool, in vm_can_run_on_host).
    /// </summary>
    public static IReadOnlyList<XenObject> MayStartVms(IReadOnlyList<XenObject> candidates, IReadOnlyCollection<XenObject> allHosts)
    {
        if (!InProgress(allHosts))
        {
            return candidates;
        }

        var newest = Newest(allHosts);
        return candidates.Where(h => BuildOf(h) == newest).ToList();
    }
}
