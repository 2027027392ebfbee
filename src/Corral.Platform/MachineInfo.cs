using System.Globalization;

namespace Corral.Platform;

/// <summary>Memory and kernel of the machine this agent runs on, read from /proc (its CPUs: <see cref="CpuInfo"/>).</summary>
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

    public static string KernelRelease() => File.ReadAllText("/proc/sys/kernel/osrelease").Trim();
}
