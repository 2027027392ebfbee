using System.Reflection;

namespace Corral.Model;

/// <summary>
/// The version figures a Corral host reports, in one place: those of a current XenServer 8 host, so that clients take
/// their modern paths, with Corral's own version beside them under a key of its own.
/// </summary>
/// <remarks>
/// <para>Why these figures (the clients' checks are in docs/architecture.md, "What clients are told"):</para>
/// <list type="bullet">
/// <item>API 2.21, vendor XenSource: what XenServer 8 and XCP-ng 8.3 report. XenCenter refuses only API &lt; 2.6 and 2.7;
/// a client that does not know 2.21 treats it as newer than all it knows.</item>
/// <item><c>product_brand</c> "XenServer", <c>product_version</c> 8.4.0: official XenCenter accepts "XenServer" (its
/// brand) and "Citrix Hypervisor" (its legacy brand) and refuses "XCP-ng"; Xen Orchestra decides its update path by
/// brand and unlocks its 8.3-and-later screens by <c>product_version</c> &gt;= 8.3.0. "XenServer 8.4.0" is a real
/// XenServer 8 host's pair, so both take their current paths; "Citrix Hypervisor" with 8.4 would be a host that never
/// existed, and Xen Orchestra would send it down its legacy patch path.</item>
/// <item><c>platform_version</c> 3.4.0 (XCP-ng 8.3's; XenServer 8's is of the same generation): XenCenter gates its
/// features on it and refuses a pool member below 2.9.50; Xen Orchestra reads nested virtualisation the 8.3 way from
/// 3.4 on.</item>
/// <item><c>xencenter_min</c> 2.20, <c>xencenter_max</c> 2.21: XenCenter refuses a host whose <c>xencenter_min</c> is
/// above its own API version, and the last open-source XenCenter knows 2.20 at most (xapi writes 2.21 in both, which
/// that XenCenter refuses). A max above the client's only shows a "newer XenCenter available" alert.</item>
/// <item><c>xapi</c> / <c>xapi_build</c> 25.33 / 25.33.1, as XCP-ng 8.3 shipped: above every xapi version XenCenter
/// gates on (the newest is 23.27.0).</item>
/// <item><c>network_backend</c> "bridge": Corral's VM networks are Linux bridges (xapi writes "openvswitch" on hosts
/// that use Open vSwitch, and XenCenter shows vSwitch features only then).</item>
/// <item>Corral's own version goes under <c>corral_version</c>: keys with a ':' are supplemental packs to XenCenter and
/// Xen Orchestra, so a key without one is never taken for a pack.</item>
/// </list>
/// </remarks>
public static class XenServerVersion
{
    public const long ApiVersionMajor = 2;
    public const long ApiVersionMinor = 21;
    public const string ApiVersionVendor = "XenSource";

    public const string ProductBrand = "XenServer";
    public const string ProductVersion = "8.4.0";
    public const string ProductVersionText = "8";
    public const string ProductVersionTextShort = "8";
    public const string PlatformName = "XCP";
    public const string PlatformVersion = "3.4.0";
    public const string XapiVersion = "25.33";
    public const string XapiBuild = "25.33.1";
    public const string XenCenterMin = "2.20";
    public const string XenCenterMax = "2.21";

    /// <summary>Corral's VM networks are Linux bridges (xapi's other value is "openvswitch").</summary>
    public const string NetworkBackend = "bridge";

    /// <summary>
    /// The pool database schema: xapi's schema version (major.minor) of the datamodel Corral is generated from
    /// (datamodel/xapi-datamodel.json, xapi at e2ee48d6). XenCenter lets hosts join a pool only when theirs are equal.
    /// </summary>
    public const string DbSchema = "5.909";

    /// <summary>The key of <c>software_version</c> that carries Corral's own version (no ':', so never a supplemental pack).</summary>
    public const string CorralVersionKey = "corral_version";

    private static readonly Assembly Build = typeof(XenServerVersion).Assembly;

    /// <summary>Corral's own version, as built (with the source revision when the build knew it).</summary>
    public static string CorralVersion { get; } =
        Build.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? Build.GetName().Version?.ToString(3) ?? "0.0.0";

    /// <summary>The source revision this build was made from, when the build knew it ("" otherwise).</summary>
    public static string SourceRevision => CorralVersion.Contains('+', StringComparison.Ordinal) ? CorralVersion[(CorralVersion.IndexOf('+', StringComparison.Ordinal) + 1)..] : "";

    /// <summary>The day this build was made (yyyy-MM-dd), as xapi's <c>date</c> is its build's.</summary>
    public static string BuildDate => Metadata("CorralBuildDate");

    /// <summary>The machine this build was made on, as xapi's <c>hostname</c> key names its build host.</summary>
    public static string BuildHost => Metadata("CorralBuildHost");

    private static string Metadata(string key) =>
        Build.GetCustomAttributes<AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == key)?.Value ?? "";

    /// <summary>
    /// <c>host.software_version</c> as a XenServer 8 host fills it, with Corral's figures where they are Corral's own:
    /// <c>build_number</c>, <c>date</c> and <c>hostname</c> describe this build, <c>linux</c> the running kernel. Keys
    /// xapi writes only for Xen (<c>xen</c>) or for packs Corral does not have are left out; xapi drops empty values, and
    /// so does this. <paramref name="corralVersion"/> is the version installed (the package's, whose last figure is its
    /// build: what a rolling upgrade compares), with the source revision after a '+'.
    /// </summary>
    public static Dictionary<string, string> SoftwareVersion(string kernelRelease, string corralVersion)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["product_version"] = ProductVersion,
            ["product_version_text"] = ProductVersionText,
            ["product_version_text_short"] = ProductVersionTextShort,
            ["platform_name"] = PlatformName,
            ["platform_version"] = PlatformVersion,
            ["product_brand"] = ProductBrand,
            ["xapi"] = XapiVersion,
            ["build_number"] = "corral-" + corralVersion.Split('+')[0],
            ["hostname"] = BuildHost,
            ["date"] = BuildDate,
            ["xapi_build"] = XapiBuild,
            ["linux"] = kernelRelease,
            ["xencenter_min"] = XenCenterMin,
            ["xencenter_max"] = XenCenterMax,
            ["network_backend"] = NetworkBackend,
            ["db_schema"] = DbSchema,
            [CorralVersionKey] = corralVersion,
        };
        foreach (var key in map.Where(kv => string.IsNullOrEmpty(kv.Value)).Select(kv => kv.Key).ToList())
        {
            map.Remove(key);
        }

        return map;
    }
}
