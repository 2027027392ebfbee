using System.Globalization;
using System.Net.NetworkInformation;

namespace Corral.Platform;

/// <summary>
/// What a host record says of the machine, read once at agent start: its CPUs, firmware strings, IOMMU, NUMA nodes,
/// kernel, boot time, and the iSCSI initiator name when the machine has one configured.
/// </summary>
public sealed record MachineFacts(
    CpuInfo Cpus,
    IReadOnlyDictionary<string, string> BiosStrings,
    bool Iommu,
    int NumaNodes,
    string KernelRelease,
    DateTime BootTimeUtc,
    string? IscsiInitiatorName,
    string DnsDomain)
{
    /// <summary>xapi's <c>bios_strings</c> keys for a host and the /sys/class/dmi/id file each comes from.</summary>
    public static IReadOnlyList<(string Key, string File)> BiosFiles { get; } =
    [
        ("bios-vendor", "bios_vendor"),
        ("bios-version", "bios_version"),
        ("system-manufacturer", "sys_vendor"),
        ("system-product-name", "product_name"),
        ("system-version", "product_version"),
        ("system-serial-number", "product_serial"),
        ("baseboard-manufacturer", "board_vendor"),
        ("baseboard-product-name", "board_name"),
        ("baseboard-version", "board_version"),
        ("baseboard-serial-number", "board_serial"),
    ];

    /// <summary>Reads the facts of this machine (<paramref name="root"/> prefixes every path, for tests).</summary>
    public static MachineFacts Read(string root = "")
    {
        string P(string path) => root + path;
        return new MachineFacts(
            CpuInfo.Read(P("/proc/cpuinfo")),
            ReadBiosStrings(P("/sys/class/dmi/id")),
            HasEntries(P("/sys/class/iommu")),
            CountNumaNodes(P("/sys/devices/system/node")),
            ReadTrimmed(P("/proc/sys/kernel/osrelease")) ?? "",
            ParseBootTime(ReadTrimmed(P("/proc/stat")) ?? ""),
            ParseInitiatorName(ReadTrimmed(P("/etc/iscsi/initiatorname.iscsi")) ?? ""),
            DomainName());
    }

    /// <summary>
    /// The firmware strings, with xapi's keys: a file that is missing or unreadable (serial numbers are root's) gives "",
    /// as does "Not Specified", as xapi has it from dmidecode.
    /// </summary>
    public static Dictionary<string, string> ReadBiosStrings(string directory)
    {
        var strings = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, file) in BiosFiles)
        {
            var value = ReadTrimmed(Path.Combine(directory, file)) ?? "";
            strings[key] = value == "Not Specified" ? "" : new string(value.Where(c => c is >= ' ' and <= '~').ToArray()).Trim();
        }

        return strings;
    }

    /// <summary>The boot time from /proc/stat's <c>btime</c> line (seconds since the epoch); the epoch when there is none.</summary>
    public static DateTime ParseBootTime(string procStat)
    {
        foreach (var line in procStat.Split('\n'))
        {
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length == 2 && parts[0] == "btime" && long.TryParse(parts[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out var seconds))
            {
                return DateTime.UnixEpoch.AddSeconds(seconds);
            }
        }

        return DateTime.UnixEpoch;
    }

    /// <summary>The <c>InitiatorName=</c> of open-iscsi's configuration, or null.</summary>
    public static string? ParseInitiatorName(string text)
    {
        foreach (var line in text.Split('\n'))
        {
            var trimmed = line.Trim();
            if (trimmed.StartsWith("InitiatorName=", StringComparison.Ordinal) && trimmed.Length > "InitiatorName=".Length)
            {
                return trimmed["InitiatorName=".Length..];
            }
        }

        return null;
    }

    private static int CountNumaNodes(string directory)
    {
        try
        {
            return Directory.Exists(directory)
                ? Directory.EnumerateDirectories(directory, "node*").Count(d => Path.GetFileName(d)[4..].All(char.IsAsciiDigit) && Path.GetFileName(d).Length > 4)
                : 0;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return 0;
        }
    }

    private static bool HasEntries(string directory)
    {
        try
        {
            return Directory.Exists(directory) && Directory.EnumerateFileSystemEntries(directory).Any();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static string? ReadTrimmed(string path)
    {
        try
        {
            return File.Exists(path) ? File.ReadAllText(path).Trim() : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static string DomainName()
    {
        var domain = IPGlobalProperties.GetIPGlobalProperties().DomainName;
        return string.IsNullOrWhiteSpace(domain) || domain == "(none)" ? "" : domain.Trim('.');
    }
}
