using System.Globalization;

namespace Corral.Storage;

/// <summary>
/// An iSCSI SR's location (<c>lvmoiscsi</c>: its PBD's target, port, targetIQN, SCSIid, chapuser, chappassword):
/// <c>iscsi://[user%password@]address:port/target-iqn/SCSIid/sr-uuid[?initiator=iqn]</c>. The LUN is named by its SCSIid,
/// as XenServer names it, since LUN numbers may change on the target; the driver looks the number up (see
/// docs/storage.md). The initiator is the name the host logs in under: SM's <c>localIQN</c>, the host's own IQN.
/// </summary>
public sealed record IscsiLocation(string Address, int Port, string TargetIqn, string ScsiId, string SrUuid, string? ChapUser = null, string? ChapPassword = null,
    string? Initiator = null)
{
    public const string Scheme = "iscsi://";
    public const int DefaultPort = 3260;

    public static bool IsIscsi(string location) => location.StartsWith(Scheme, StringComparison.Ordinal);

    /// <summary>The location a PBD's device_config names, or null when it lacks a target, targetIQN or SCSIid (or has a bad port).</summary>
    public static IscsiLocation? FromDeviceConfig(IReadOnlyDictionary<string, string> deviceConfig, string srUuid)
    {
        ArgumentNullException.ThrowIfNull(deviceConfig);
        if (deviceConfig.GetValueOrDefault("target") is not { Length: > 0 } target
            || deviceConfig.GetValueOrDefault("targetIQN") is not { Length: > 0 } iqn
            || deviceConfig.GetValueOrDefault("SCSIid") is not { Length: > 0 } scsiId
            || ParsePort(deviceConfig.GetValueOrDefault("port")) is not { } port)
        {
            return null;
        }

        var user = deviceConfig.GetValueOrDefault("chapuser");
        return new IscsiLocation(target, port, iqn, scsiId, srUuid,
            string.IsNullOrEmpty(user) ? null : user, string.IsNullOrEmpty(user) ? null : deviceConfig.GetValueOrDefault("chappassword") ?? "",
            InitiatorOf(deviceConfig));
    }

    /// <summary>SM's <c>localIQN</c>: the initiator name the host logs in under (the host's IQN, which the agent adds to its PBDs' device_config when they name none).</summary>
    public static string? InitiatorOf(IReadOnlyDictionary<string, string> deviceConfig) =>
        deviceConfig?.GetValueOrDefault("localIQN") is { Length: > 0 } iqn ? iqn : null;

    /// <summary>3260 when none is given; null for anything but a TCP port number.</summary>
    public static int? ParsePort(string? port) =>
        string.IsNullOrEmpty(port) ? DefaultPort
        : int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out var p) && p is > 0 and < 65536 ? p : null;

    /// <summary>Reads a location made by <see cref="ToString"/>.</summary>
    /// <exception cref="FormatException">It is not one.</exception>
    public static IscsiLocation Parse(string location)
    {
        ArgumentNullException.ThrowIfNull(location);
        if (!IsIscsi(location))
        {
            throw new FormatException($"not an iscsi:// location: {location}");
        }

        var rest = location[Scheme.Length..];
        string? initiator = null;
        if (rest.LastIndexOf(Corral.Platform.IscsiExtentPath.InitiatorQuery, StringComparison.Ordinal) is var query and > 0)
        {
            initiator = Uri.UnescapeDataString(rest[(query + Corral.Platform.IscsiExtentPath.InitiatorQuery.Length)..]);
            rest = rest[..query];
        }

        string? user = null, password = null;
        if (rest.IndexOf('@', StringComparison.Ordinal) is var at and > 0)
        {
            var credentials = rest[..at].Split(':', 2);
            user = Uri.UnescapeDataString(credentials[0]);
            password = credentials.Length == 2 ? Uri.UnescapeDataString(credentials[1]) : "";
            rest = rest[(at + 1)..];
        }

        var parts = rest.Split('/');
        var colon = parts[0].LastIndexOf(':');
        if (parts.Length != 4 || colon <= 0 || ParsePort(parts[0][(colon + 1)..]) is not { } port || parts.Skip(1).Any(p => p.Length == 0))
        {
            throw new FormatException($"an iSCSI SR's location is iscsi://address:port/iqn/SCSIid/sr-uuid: {location}");
        }

        return new IscsiLocation(parts[0][..colon], port, Uri.UnescapeDataString(parts[1]), Uri.UnescapeDataString(parts[2]), parts[3], user, password,
            string.IsNullOrEmpty(initiator) ? null : initiator);
    }

    public string Portal => $"{Address}:{Port.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>
    /// Whether libiscsi's URLs can carry these CHAP credentials: libiscsi takes the user up to the first '%' and the
    /// password up to the '@', unescaped, so a user may hold neither '%' nor '@' and a password neither '@' nor '/'.
    /// </summary>
    public static bool UrlSafe(string? user, string? password) =>
        (user is null || user.IndexOfAny(['%', '@', '/']) < 0) && (password is null || password.IndexOfAny(['@', '/']) < 0);

    /// <summary>libiscsi's URL of a LUN (or of the portal alone, with no LUN), carrying the CHAP credentials as libiscsi reads them (<see cref="UrlSafe"/>).</summary>
    public string LibIscsiUrl(int? lun) =>
        $"{Scheme}{(ChapUser is null ? "" : $"{ChapUser}%{ChapPassword}@")}{Portal}" + (lun is { } n ? $"/{TargetIqn}/{n.ToString(CultureInfo.InvariantCulture)}" : "");

    /// <summary>libiscsi's URL of a LUN (or of the portal alone) without the CHAP credentials, which go in <see cref="LibIscsiEnvironment"/>.</summary>
    public string LibIscsiUrlWithoutCredentials(int? lun) =>
        $"{Scheme}{Portal}" + (lun is { } n ? $"/{TargetIqn}/{n.ToString(CultureInfo.InvariantCulture)}" : "");

    /// <summary>
    /// The CHAP credentials as libiscsi's tools read them from their environment (<c>LIBISCSI_CHAP_USERNAME</c>,
    /// <c>LIBISCSI_CHAP_PASSWORD</c>): unlike a URL's, they do not show in the host's process list.
    /// </summary>
    /// <summary>The arguments that make one of libiscsi's tools log in under <see cref="Initiator"/> (none: the tool's own name).</summary>
    public IReadOnlyList<string> LibIscsiInitiatorArguments => Initiator is null ? [] : ["-i", Initiator];

    public IReadOnlyDictionary<string, string> LibIscsiEnvironment =>
        ChapUser is null
            ? new Dictionary<string, string>()
            : new Dictionary<string, string> { ["LIBISCSI_CHAP_USERNAME"] = ChapUser, ["LIBISCSI_CHAP_PASSWORD"] = ChapPassword ?? "" };

    /// <summary>
    /// What QEMU opens for a VDI: the LUN's URL and the extent, as <c>iscsi://.../iqn/lun#offset+size</c>; QEMU's raw
    /// format node takes the extent as its offset and size, so the guest can address nothing outside it.
    /// </summary>
    public string ExtentPath(int lun, long offset, long size) =>
        LibIscsiUrl(lun) + Corral.Platform.IscsiExtentPath.InitiatorSuffix(Initiator) + "#" + offset.ToString(CultureInfo.InvariantCulture) + "+" + size.ToString(CultureInfo.InvariantCulture);

    /// <summary>In the location string (Corral's own), the credentials are escaped and joined by ':'.</summary>
    private string Credentials => ChapUser is null ? "" : $"{Uri.EscapeDataString(ChapUser)}:{Uri.EscapeDataString(ChapPassword ?? "")}@";

    public override string ToString() =>
        $"{Scheme}{Credentials}{Portal}/{Uri.EscapeDataString(TargetIqn)}/{Uri.EscapeDataString(ScsiId)}/{SrUuid}{Corral.Platform.IscsiExtentPath.InitiatorSuffix(Initiator)}";
}
