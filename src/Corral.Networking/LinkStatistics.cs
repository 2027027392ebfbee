using System.Globalization;

namespace Corral.Networking;

/// <summary>A network link's byte counters as the kernel counts them, from the link's side (a tap's rx is what its VM sent).</summary>
public readonly record struct LinkByteCounters(long ReceivedBytes, long TransmittedBytes);

public static class LinkStatistics
{
    /// <summary>The counters of <paramref name="link"/> in this process's network namespace; null when there is no such link.</summary>
    public static LinkByteCounters? TryRead(string link)
    {
        if (link.Length == 0 || link.Contains('/', StringComparison.Ordinal) || link is "." or "..")
        {
            return null;
        }

        var directory = Path.Combine("/sys/class/net", link, "statistics");
        try
        {
            return new LinkByteCounters(ReadCounter(Path.Combine(directory, "rx_bytes")), ReadCounter(Path.Combine(directory, "tx_bytes")));
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException or IOException)
        {
            return null;
        }
    }

    /// <summary>
    /// The host's own network interfaces, as XenServer's PIFs: every link but loopback, bridges and taps (a VM's NIC).
    /// </summary>
    public static IReadOnlyList<string> HostInterfaces()
    {
        try
        {
            return Directory.GetDirectories("/sys/class/net")
                .Where(d => Path.GetFileName(d) != "lo" && !Directory.Exists(Path.Combine(d, "bridge")) && !File.Exists(Path.Combine(d, "tun_flags")))
                .Select(Path.GetFileName)
                .OfType<string>()
                .Order(StringComparer.Ordinal)
                .ToList();
        }
        catch (Exception ex) when (ex is DirectoryNotFoundException or IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    private static long ReadCounter(string path) =>
        long.Parse(File.ReadAllText(path).Trim(), NumberStyles.None, CultureInfo.InvariantCulture);
}
