using System.Globalization;

namespace Corral.Platform;

/// <summary>One logical CPU as /proc/cpuinfo describes it.</summary>
/// <param name="Number">Its <c>processor</c> index.</param>
/// <param name="Speed">Its <c>cpu MHz</c> line, as written ("2096.014"); empty when the kernel gives none.</param>
public sealed record LogicalCpu(
    int Number,
    string Vendor,
    string ModelName,
    string Family,
    string Model,
    string Stepping,
    string Speed,
    string Flags,
    string PhysicalId,
    int Siblings,
    int CoresPerSocket);

/// <summary>The machine's CPUs as /proc/cpuinfo lists them, with the summary xapi puts in <c>host.cpu_info</c>.</summary>
public sealed record CpuInfo(IReadOnlyList<LogicalCpu> Cpus)
{
    public int CpuCount => Cpus.Count;

    /// <summary>Distinct <c>physical id</c>s; one when the kernel names none (a single-socket machine, or a VM).</summary>
    public int SocketCount => Math.Max(1, Cpus.Select(c => c.PhysicalId).Where(p => p.Length > 0).Distinct(StringComparer.Ordinal).Count());

    /// <summary><c>siblings</c> (logical CPUs per socket) over <c>cpu cores</c> (cores per socket); one when either is missing.</summary>
    public int ThreadsPerCore =>
        Cpus.Count > 0 && Cpus[0].CoresPerSocket > 0 && Cpus[0].Siblings >= Cpus[0].CoresPerSocket ? Cpus[0].Siblings / Cpus[0].CoresPerSocket : 1;

    private LogicalCpu? First => Cpus.Count > 0 ? Cpus[0] : null;

    /// <summary>
    /// <c>host.cpu_info</c> with xapi's keys (cpu_count, socket_count, threads_per_core, nr_nodes, vendor, speed,
    /// modelname, family, model, stepping, flags), from the first CPU as xapi takes them. xapi's <c>features_*</c> keys
    /// are Xen CPUID policies, which a KVM/TCG host does not have: they are left out rather than made up.
    /// </summary>
    public Dictionary<string, string> Summary(int numaNodes) => new(StringComparer.Ordinal)
    {
        ["cpu_count"] = CpuCount.ToString(CultureInfo.InvariantCulture),
        ["socket_count"] = SocketCount.ToString(CultureInfo.InvariantCulture),
        ["threads_per_core"] = ThreadsPerCore.ToString(CultureInfo.InvariantCulture),
        ["nr_nodes"] = Math.Max(1, numaNodes).ToString(CultureInfo.InvariantCulture),
        ["vendor"] = First?.Vendor ?? "",
        ["speed"] = First?.Speed ?? "",
        ["modelname"] = First?.ModelName ?? "",
        ["family"] = First?.Family ?? "",
        ["model"] = First?.Model ?? "",
        ["stepping"] = First?.Stepping ?? "",
        ["flags"] = First?.Flags ?? "",
    };

    public static CpuInfo Read(string path = "/proc/cpuinfo") => Parse(File.ReadAllText(path));

    /// <summary>Parses /proc/cpuinfo: blocks separated by blank lines, one per logical CPU, "key : value" lines.</summary>
    public static CpuInfo Parse(string text)
    {
        var cpus = new List<LogicalCpu>();
        var block = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (line.Trim().Length == 0)
            {
                Flush(block, cpus);
                continue;
            }

            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon > 0)
            {
                block[line[..colon].Trim()] = line[(colon + 1)..].Trim();
            }
        }

        Flush(block, cpus);
        return new CpuInfo(cpus);
    }

    private static void Flush(Dictionary<string, string> block, List<LogicalCpu> cpus)
    {
        if (block.TryGetValue("processor", out var number) && int.TryParse(number, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n))
        {
            string Get(string key) => block.GetValueOrDefault(key, "");
            int Int(string key) => int.TryParse(Get(key), NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : 0;
            cpus.Add(new LogicalCpu(n, Get("vendor_id"), Get("model name"), Get("cpu family"), Get("model"), Get("stepping"),
                Get("cpu MHz"), Get("flags"), Get("physical id"), Int("siblings"), Int("cpu cores")));
        }

        block.Clear();
    }
}
