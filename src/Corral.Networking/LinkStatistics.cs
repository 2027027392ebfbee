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

    private static long ReadCounter(string path) =>
        long.Parse(File.ReadAllText(path).Trim(), NumberStyles.None, CultureInfo.InvariantCulture);
}
