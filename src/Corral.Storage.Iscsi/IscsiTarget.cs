using System.Collections.Concurrent;
using System.Globalization;
using System.Security;
using System.Text;
using System.Text.RegularExpressions;
using Corral.Model;
using Corral.Platform;

namespace Corral.Storage.Iscsi;

/// <summary>A LUN as a probe reports it (SM's &lt;LUN&gt;: vendor, serial, LUNid, size, SCSIid).</summary>
/// <param name="T10ScsiId">The id of its T10 vendor designator alone (<c>1IET_00010001</c>), which Corral showed before
/// it read NAA designators: a PBD that names it still finds the LUN.</param>
public sealed record IscsiLun(int Number, string ScsiId, string Vendor, string Serial, long Size, string? T10ScsiId = null)
{
    public bool IsNamed(string scsiId) => scsiId.Length > 0 && (scsiId == ScsiId || scsiId == T10ScsiId);
}

/// <summary>
/// An iSCSI target reached through libiscsi's command-line tools (Debian's libiscsi-bin: iscsi-ls, iscsi-inq,
/// iscsi-readcapacity16): each call is its own short session under the host's initiator name (its IQN), so no initiator
/// state outlives it; CHAP credentials go
/// in their environment, which other users of the host cannot read, never in their arguments. A login refused
/// (CHAP) is SM's ISCSILogin (68); a portal that does not answer, ISCSIDiscovery (83).
/// </summary>
public static partial class IscsiTarget
{
    /// <summary>SCSIid → LUN number per portal and target, filled by every lookup: QEMU's disk paths need the number synchronously.</summary>
    private static readonly ConcurrentDictionary<string, int> LunNumbers = new(StringComparer.Ordinal);

    /// <summary>The IQNs the portal reports (SendTargets discovery).</summary>
    public static async Task<IReadOnlyList<string>> TargetsAsync(IscsiLocation portal, CancellationToken cancellationToken)
    {
        var output = await RunAsync("iscsi-ls", [portal.LibIscsiUrlWithoutCredentials(null)], portal, cancellationToken);
        return TargetLine().Matches(output).Select(m => m.Groups[1].Value).Distinct(StringComparer.Ordinal).ToList();
    }

    /// <summary>The target's disks (direct-access LUNs), with their SCSIid, vendor, serial and size.</summary>
    public static async Task<IReadOnlyList<IscsiLun>> LunsAsync(IscsiLocation target, CancellationToken cancellationToken)
    {
        if (!(await TargetsAsync(target, cancellationToken)).Contains(target.TargetIqn, StringComparer.Ordinal))
        {
            throw SrBackend.Failure(96, "The request is missing or has an incorrect target IQN parameter", target.TargetIqn);
        }

        var listing = await RunAsync("iscsi-ls", ["-s", target.LibIscsiUrlWithoutCredentials(null)], target, cancellationToken);
        var luns = new List<IscsiLun>();
        var inTarget = false;
        foreach (var line in listing.Split('\n'))
        {
            if (TargetLine().Match(line) is { Success: true } t)
            {
                inTarget = t.Groups[1].Value == target.TargetIqn;
            }
            else if (inTarget && DiskLine().Match(line) is { Success: true } d)
            {
                luns.Add(await DescribeAsync(target, int.Parse(d.Groups[1].Value, CultureInfo.InvariantCulture), cancellationToken));
            }
        }

        return luns;
    }

    /// <summary>The number of the LUN <see cref="IscsiLocation.ScsiId"/> names; SM's ConfigSCSIid (107) when the target has none.</summary>
    public static async Task<IscsiLun> FindAsync(IscsiLocation target, CancellationToken cancellationToken)
    {
        var lun = (await LunsAsync(target, cancellationToken)).FirstOrDefault(l => l.IsNamed(target.ScsiId))
                  ?? throw SrBackend.Failure(107, "The SCSIid parameter is missing or incorrect", $"no LUN {target.ScsiId} on {target.TargetIqn}");
        LunNumbers[CacheKey(target)] = lun.Number;
        return lun;
    }

    /// <summary>The LUN number, from the last lookup (every plug makes one), else looked up now.</summary>
    public static int LunNumber(IscsiLocation target) =>
        LunNumbers.TryGetValue(CacheKey(target), out var number) ? number : FindAsync(target, CancellationToken.None).GetAwaiter().GetResult().Number;

    private static string CacheKey(IscsiLocation target) => $"{target.Portal}/{target.TargetIqn}/{target.ScsiId}";

    private static async Task<IscsiLun> DescribeAsync(IscsiLocation target, int number, CancellationToken cancellationToken)
    {
        var url = target.LibIscsiUrlWithoutCredentials(number);
        var standard = await RunAsync("iscsi-inq", [url], target, cancellationToken);
        var designators = await IscsiIdentification.ReadAsync(target, number, cancellationToken);
        var serial = await RunAsync("iscsi-inq", ["-e", "1", "-c", "128", url], target, cancellationToken);
        var capacity = await RunAsync("iscsi-readcapacity16", [url], target, cancellationToken);
        var vendor = VendorLine().Match(standard).Groups[1].Value.Trim();
        var t10 = ScsiDesignator.ScsiIdOf([.. designators.Where(d => d.Type == ScsiDesignator.T10Vendor)]);
        return new IscsiLun(number, ScsiDesignator.ScsiIdOf(designators), vendor, SerialLine().Match(serial).Groups[1].Value.Trim(),
            long.Parse(SizeLine().Match(capacity).Groups[1].Value, CultureInfo.InvariantCulture), t10.Length > 0 ? t10 : null);
    }

    /// <summary>SM's &lt;iscsi-target-iqns&gt; list, the last parameter of the probe's error 96.</summary>
    public static string TargetsXml(IscsiLocation portal, IReadOnlyList<string> iqns)
    {
        var xml = new StringBuilder("<?xml version=\"1.0\" ?>\n<iscsi-target-iqns>");
        for (var i = 0; i < iqns.Count; i++)
        {
            xml.Append("<TGT><Index>").Append(i.ToString(CultureInfo.InvariantCulture)).Append("</Index><IPAddress>")
                .Append(SecurityElement.Escape(portal.Address)).Append("</IPAddress><TargetIQN>")
                .Append(SecurityElement.Escape(iqns[i])).Append("</TargetIQN></TGT>");
        }

        return xml.Append("</iscsi-target-iqns>\n").ToString();
    }

    /// <summary>SM's &lt;iscsi-target&gt; list of LUNs, the last parameter of the probe's error 107.</summary>
    public static string LunsXml(IReadOnlyList<IscsiLun> luns)
    {
        var xml = new StringBuilder("<?xml version=\"1.0\" ?>\n<iscsi-target>");
        foreach (var lun in luns)
        {
            xml.Append("<LUN><vendor>").Append(SecurityElement.Escape(lun.Vendor)).Append("</vendor><serial>")
                .Append(SecurityElement.Escape(lun.Serial)).Append("</serial><LUNid>").Append(lun.Number.ToString(CultureInfo.InvariantCulture))
                .Append("</LUNid><size>").Append(lun.Size.ToString(CultureInfo.InvariantCulture)).Append("</size><SCSIid>")
                .Append(SecurityElement.Escape(lun.ScsiId)).Append("</SCSIid></LUN>");
        }

        return xml.Append("</iscsi-target>\n").ToString();
    }

    /// <summary>
    /// Runs one of libiscsi's tools under the host's initiator name, the CHAP credentials of <paramref name="target"/>
    /// in its environment, never its arguments.
    /// </summary>
    private static async Task<string> RunAsync(string program, string[] arguments, IscsiLocation target, CancellationToken cancellationToken)
    {
        var result = await CommandRunner.RunAsync(program, [.. target.LibIscsiInitiatorArguments, .. arguments], cancellationToken, TimeSpan.FromSeconds(60),
            target.LibIscsiEnvironment);
        if (result.Succeeded)
        {
            return result.StandardOutput;
        }

        throw SessionFailure((result.StandardError + result.StandardOutput).Trim());
    }

    /// <summary>What libiscsi said when a session failed, as SM says it: a login refused (68), or else a discovery failure (83).</summary>
    internal static XenApiException SessionFailure(string error) =>
        error.Contains("login", StringComparison.OrdinalIgnoreCase) || error.Contains("auth", StringComparison.OrdinalIgnoreCase)
            ? SrBackend.Failure(68, "ISCSI login failed - check access settings for the initiator on the storage, if CHAP is used verify CHAP credentials", error)
            : SrBackend.Failure(83, "ISCSI discovery failed", error);

    [GeneratedRegex(@"^Target:(\S+)", RegexOptions.Multiline)]
    private static partial Regex TargetLine();

    [GeneratedRegex(@"^Lun:(\d+)\s+Type:DIRECT_ACCESS")]
    private static partial Regex DiskLine();

    [GeneratedRegex(@"^Vendor:(.*)$", RegexOptions.Multiline)]
    private static partial Regex VendorLine();

    [GeneratedRegex(@"^Unit Serial Number:\[(.*)\]", RegexOptions.Multiline)]
    private static partial Regex SerialLine();

    [GeneratedRegex(@"^Total size:(\d+)", RegexOptions.Multiline)]
    private static partial Regex SizeLine();

}
