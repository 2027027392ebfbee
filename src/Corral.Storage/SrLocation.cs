namespace Corral.Storage;

/// <summary>
/// Where an SR's volumes are, as one string its driver understands: a directory for file and ISO SRs (their PBD's
/// <c>device_config:location</c>), an <c>nfs://server/serverpath/&lt;sr uuid&gt;</c> URL for an NFS SR reached in
/// userspace (its PBD's <c>server</c> and <c>serverpath</c>; the SR is a directory named after it on the export, as
/// XenServer's NFS SRs are).
/// </summary>
public static class SrLocation
{
    /// <summary>The SR's location on a host whose PBD has <paramref name="deviceConfig"/>, or null when it names none (or an unusable one).</summary>
    public static string? Of(IReadOnlyDictionary<string, string> deviceConfig, string srUuid)
    {
        ArgumentNullException.ThrowIfNull(deviceConfig);
        if (deviceConfig.TryGetValue("location", out var location) && !string.IsNullOrWhiteSpace(location))
        {
            return location;
        }

        if (deviceConfig.TryGetValue("server", out var server) && server.Length > 0
            && deviceConfig.TryGetValue("serverpath", out var serverPath) && serverPath.Length > 0)
        {
            try
            {
                return new NfsUrl(server, NfsUrl.NormalizedExport(serverPath), srUuid, NfsUrl.ParseVersion(deviceConfig.GetValueOrDefault("nfsversion"))).ToString();
            }
            catch (FormatException)
            {
                return null; // an nfsversion the driver's own check refuses (SR_BACKEND_FAILURE_72)
            }
        }

        // An iSCSI SR (lvmoiscsi): the LUN its SCSIid names on the target.
        return IscsiLocation.FromDeviceConfig(deviceConfig, srUuid)?.ToString();
    }
}

/// <summary>
/// An NFS SR's location: <c>nfs://server/export/sr-uuid</c>, with <c>?version=4</c> when its control path speaks NFSv4.
/// QEMU's nfs block driver always speaks NFSv3 (it has no version option), so <see cref="VolumeUrl"/> carries no version.
/// </summary>
public sealed record NfsUrl(string Server, string Export, string SrDirectory, int Version)
{
    public const string Scheme = "nfs://";

    public static bool IsNfs(string location) => location.StartsWith(Scheme, StringComparison.Ordinal);

    /// <summary>3 or 4 from xapi's <c>nfsversion</c> ("3", "4", "4.0", "4.1"; none is 3).</summary>
    /// <exception cref="FormatException">Anything else.</exception>
    public static int ParseVersion(string? nfsVersion) => nfsVersion switch
    {
        null or "" or "3" => 3,
        _ when nfsVersion.StartsWith('4') && (nfsVersion.Length == 1 || nfsVersion[1] == '.') => 4,
        _ => throw new FormatException($"invalid nfsversion {nfsVersion}"),
    };

    /// <summary>Reads a location made by <see cref="ToString"/>.</summary>
    /// <exception cref="FormatException">It is not one.</exception>
    public static NfsUrl Parse(string location)
    {
        ArgumentNullException.ThrowIfNull(location);
        if (!IsNfs(location))
        {
            throw new FormatException($"not an nfs:// location: {location}");
        }

        var rest = location[Scheme.Length..];
        var version = 3;
        if (rest.IndexOf('?', StringComparison.Ordinal) is var q and >= 0)
        {
            version = rest[(q + 1)..] == "version=4" ? 4 : throw new FormatException($"unknown option in {location}");
            rest = rest[..q];
        }

        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        var last = rest.LastIndexOf('/');
        if (slash <= 0 || last < slash || last == rest.Length - 1)
        {
            throw new FormatException($"an NFS SR's location is nfs://server/export/sr-uuid: {location}");
        }

        return new NfsUrl(rest[..slash], rest[slash..last], rest[(last + 1)..], version);
    }

    /// <summary>The path mounted: the export (the server's root when it is empty).</summary>
    public string MountPath => Export.Length == 0 ? "/" : Export;

    /// <summary>The SR's directory, as a path on the export (what libnfs takes after mounting <see cref="Export"/>).</summary>
    public string DirectoryOnExport => "/" + SrDirectory;

    /// <summary>A volume's URL for qemu-img and QEMU: <c>nfs://server/export/sr-uuid/file</c>.</summary>
    public string VolumeUrl(string file) => $"{Scheme}{Server}{Export}/{SrDirectory}/{file}";

    public override string ToString() =>
        $"{Scheme}{Server}{Export}/{SrDirectory}" + (Version == 4 ? "?version=4" : "");

    /// <summary>The export path with one leading slash and none trailing; the server's root is empty.</summary>
    public static string NormalizedExport(string serverPath) => serverPath.Trim('/') is { Length: > 0 } p ? "/" + p : "";
}
