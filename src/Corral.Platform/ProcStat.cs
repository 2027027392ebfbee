using System.Globalization;

namespace Corral.Platform;

/// <summary>One CPU's (or all CPUs', for the line named "cpu") time since boot, in clock ticks.</summary>
/// <param name="Busy">Ticks spent on anything but idle and iowait.</param>
/// <param name="Total">All ticks, busy or not.</param>
public readonly record struct CpuTimes(long Busy, long Total);

/// <summary>Reads the kernel's CPU accounting: /proc/stat, /proc/&lt;pid&gt;/stat and /proc/loadavg.</summary>
public static class ProcStat
{
    /// <summary>
    /// The unit of the times in /proc/&lt;pid&gt;/stat: USER_HZ, which the kernel fixes at 100 for user space on x86_64 and
    /// arm64 whatever its own tick rate.
    /// </summary>
    public const int ClockTicksPerSecond = 100;

    /// <summary>
    /// The "cpu" (all CPUs) and "cpuN" lines of /proc/stat. Guest time is already counted in user and nice, so only the
    /// first eight columns (user nice system idle iowait irq softirq steal) are added up.
    /// </summary>
    public static IReadOnlyDictionary<string, CpuTimes> ParseCpuTimes(string procStat)
    {
        var result = new Dictionary<string, CpuTimes>(StringComparer.Ordinal);
        foreach (var line in procStat.Split('\n'))
        {
            if (!line.StartsWith("cpu", StringComparison.Ordinal))
            {
                continue;
            }

            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 5)
            {
                continue;
            }

            long total = 0, idle = 0;
            for (var i = 1; i < Math.Min(fields.Length, 9); i++)
            {
                var ticks = long.Parse(fields[i], NumberStyles.None, CultureInfo.InvariantCulture);
                total += ticks;
                if (i is 4 or 5)
                {
                    idle += ticks;
                }
            }

            result[fields[0]] = new CpuTimes(total - idle, total);
        }

        return result;
    }

    /// <summary>The share of time busy between two readings, 0..1; NaN when no time passed or the counters went back.</summary>
    public static double BusyFraction(CpuTimes before, CpuTimes after)
    {
        var total = after.Total - before.Total;
        var busy = after.Busy - before.Busy;
        if (total <= 0 || busy < 0)
        {
            return double.NaN;
        }

        return Math.Clamp((double)busy / total, 0, 1);
    }

    /// <summary>
    /// A process's user plus system time in clock ticks, from the text of /proc/&lt;pid&gt;/stat. The command name
    /// (field 2) is in parentheses and may itself hold spaces and parentheses, so fields are counted from the last ')'.
    /// </summary>
    public static long ParseProcessCpuTicks(string processStat)
    {
        var close = processStat.LastIndexOf(')');
        if (close < 0)
        {
            throw new FormatException("not a /proc/<pid>/stat line: no command name in parentheses");
        }

        // After ')' come field 3 (state) onwards; utime and stime are fields 14 and 15.
        var fields = processStat[(close + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length < 13)
        {
            throw new FormatException($"not a /proc/<pid>/stat line: {fields.Length + 2} fields");
        }

        return long.Parse(fields[11], NumberStyles.None, CultureInfo.InvariantCulture)
            + long.Parse(fields[12], NumberStyles.None, CultureInfo.InvariantCulture);
    }

    /// <summary>The one-minute load average, the first figure of /proc/loadavg.</summary>
    public static double ParseLoadAverage(string procLoadavg)
    {
        var first = procLoadavg.Split(' ', 2, StringSplitOptions.RemoveEmptyEntries).FirstOrDefault()
            ?? throw new FormatException("empty /proc/loadavg");
        return double.Parse(first, NumberStyles.Float, CultureInfo.InvariantCulture);
    }

    public static IReadOnlyDictionary<string, CpuTimes> ReadCpuTimes() => ParseCpuTimes(File.ReadAllText("/proc/stat"));

    /// <summary>Null when the process is gone.</summary>
    public static long? ReadProcessCpuTicks(int pid)
    {
        try
        {
            return ParseProcessCpuTicks(File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat"));
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException or IOException)
        {
            return null;
        }
    }

    public static double ReadLoadAverage() => ParseLoadAverage(File.ReadAllText("/proc/loadavg"));
}
