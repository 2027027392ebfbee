using System.Globalization;

namespace Corral.Platform;

/// <summary>
/// An extent of a LUN as a disk's path names it, the grammar the storage drivers (an iSCSI SR's
/// <c>IscsiLocation.ExtentPath</c>) and the hypervisor (QEMU's block nodes) share:
/// <c>iscsi://[user%password@]address:port/target-iqn/lun[?initiator=iqn]#offset+size</c>, the CHAP credentials in
/// libiscsi's form, the initiator name the host logs in under (its own IQN, for targets that admit listed initiators only).
/// </summary>
public sealed record IscsiExtentPath(string Portal, string TargetIqn, int Lun, long Offset, long Size, string? User, string? Password, string? Initiator = null)
{
    public const string Scheme = "iscsi://";

    /// <summary>What follows a LUN in an extent path (or an iSCSI SR's location) to name the initiator: <c>?initiator=</c>.</summary>
    public const string InitiatorQuery = "?initiator=";

    /// <summary>The extent <paramref name="path"/> names; null for any path that is not an iSCSI extent's.</summary>
    public static IscsiExtentPath? TryParse(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var hash = path.LastIndexOf('#');
        if (!path.StartsWith(Scheme, StringComparison.Ordinal) || hash < 0)
        {
            return null;
        }

        var range = path[(hash + 1)..].Split('+');
        if (range.Length != 2
            || !long.TryParse(range[0], NumberStyles.None, CultureInfo.InvariantCulture, out var offset)
            || !long.TryParse(range[1], NumberStyles.None, CultureInfo.InvariantCulture, out var size))
        {
            return null;
        }

        var rest = path[Scheme.Length..hash];
        string? user = null, password = null;
        // libiscsi's form: user%password@ (the driver refuses a user holding '%', '@' or '/', a password holding '@' or '/').
        if (rest.IndexOf('@', StringComparison.Ordinal) is var at and > 0 && at < rest.IndexOf('/', StringComparison.Ordinal))
        {
            var credentials = rest[..at];
            var percent = credentials.IndexOf('%', StringComparison.Ordinal);
            (user, password) = percent < 0 ? (credentials, "") : (credentials[..percent], credentials[(percent + 1)..]);
            rest = rest[(at + 1)..];
        }

        string? initiator = null;
        if (rest.IndexOf('?', StringComparison.Ordinal) is var query and >= 0)
        {
            if (!rest[query..].StartsWith(InitiatorQuery, StringComparison.Ordinal) || rest.Length == query + InitiatorQuery.Length)
            {
                return null;
            }

            initiator = Uri.UnescapeDataString(rest[(query + InitiatorQuery.Length)..]);
            rest = rest[..query];
        }

        var parts = rest.Split('/');
        return parts.Length == 3 && int.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out var lun)
            ? new IscsiExtentPath(parts[0], Uri.UnescapeDataString(parts[1]), lun, offset, size, user, password, initiator)
            : null;
    }

    /// <summary>
    /// qemu-img's and QEMU's options for a raw node bounded to the extent over the iscsi driver (commas in values doubled,
    /// as QemuOpts wants); a CHAP password is named by the secret object <paramref name="secretId"/>, never written here.
    /// </summary>
    public string ImageOptions(string secretId)
    {
        var options = $"driver=raw,offset={N(Offset)},size={N(Size)},file.driver=iscsi,file.transport=tcp,file.portal={Q(Portal)}," +
                      $"file.target={Q(TargetIqn)},file.lun={N(Lun)}";
        if (Initiator is not null)
        {
            options += $",file.initiator-name={Q(Initiator)}";
        }

        return User is null ? options : options + $",file.user={Q(User)},file.password-secret={secretId}";
    }

    /// <summary>The path without the CHAP password, for logs and messages.</summary>
    public override string ToString() =>
        $"{Scheme}{(User is null ? "" : User + "@")}{Portal}/{TargetIqn}/{N(Lun)}{InitiatorSuffix(Initiator)}#{N(Offset)}+{N(Size)}";

    /// <summary><see cref="InitiatorQuery"/> and the name, escaped; nothing when there is none.</summary>
    public static string InitiatorSuffix(string? initiator) => initiator is null ? "" : InitiatorQuery + Uri.EscapeDataString(initiator);

    private static string N(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Q(string value) => value.Replace(",", ",,", StringComparison.Ordinal);
}
