using System.Globalization;

namespace Corral.Platform;

/// <summary>Memory and CPUs of the machine this agent runs on, read from /proc.</summary>
public static class MachineInfo
{
    public static (long TotalBytes, long AvailableBytes) ReadMemory()
    {
        long total = 0, available = 0;
        foreach (var line in File.ReadLines("/proc/meminfo"))
        {
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length < 2)
            {
                continue;
            }

            var kib = long.Parse(parts[1], CultureInfo.InvariantCulture);
            switch (parts[0])
            {
                case "MemTotal:":
                    total = kib * 1024;
                    break;
                case "MemAvailable:":
                    available = kib * 1024;
                    break;
            }
        }

        return (total, available);
    }

    public static int CpuCount => Environment.ProcessorCount;

    public static string CpuModel()
    {
        foreach (var line in File.ReadLines("/proc/cpuinfo"))
        {
            if (line.StartsWith("model name", StringComparison.Ordinal))
            {
                return line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim();
            }
        }

        return "unknown";
    }

    public static string KernelRelease() => File.ReadAllText("/proc/sys/kernel/osrelease").Trim();
}
