using System.Globalization;
using Corral.Hypervisor;
using Corral.Model;

namespace Corral.Agent.Vms;

/// <summary>
/// What a VM's process was started with beyond its devices: room for vCPUs plugged in later (QEMU's <c>maxcpus</c>), its
/// disks' queue count (one per vCPU it started with) and a memory balloon. All must be the same on a live migration's destination, so the host that starts the VM records them
/// in its <c>VM_metrics.other_config</c> (with the VM's other facts of this run); a VM started by an older Corral has no
/// record, and its destination gets neither, as its source has neither.
/// </summary>
public static class VmHardware
{
    /// <summary>The key of <c>VM_metrics.other_config</c>: <c>maxcpus=N;diskqueues=Q;balloon=true</c>.</summary>
    public const string MetricsKey = "corral-hardware";

    /// <summary>A fresh start: room up to <c>VCPUs_max</c>, and a balloon.</summary>
    public static VmLaunchSpec ForStart(VmLaunchSpec spec, XenObject vm) =>
        spec with { MaxVcpus = (int)Math.Clamp(vm.Get(XenApi.VM.VCPUsMax), spec.Vcpus, 255), Balloon = true };

    /// <summary>A destination: as the source's process was started (<paramref name="recorded"/>: the metrics' value, if any).</summary>
    public static VmLaunchSpec AsRecorded(VmLaunchSpec spec, string? recorded)
    {
        int? max = null;
        var balloon = false;
        int? queues = null;
        foreach (var part in (recorded ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries))
        {
            var (key, value) = part.IndexOf('=', StringComparison.Ordinal) is var i and > 0 ? (part[..i], part[(i + 1)..]) : (part, "");
            if (key == "maxcpus" && int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var m))
            {
                max = Math.Max(m, spec.Vcpus);
            }
            else if (key == "diskqueues" && int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var q) && q > 0)
            {
                queues = q;
            }
            else if (key == "balloon")
            {
                balloon = value == "true";
            }
        }

        return spec with { MaxVcpus = max, Balloon = balloon, DiskQueues = queues };
    }

    /// <summary>The value recorded for a process's spec.</summary>
    public static string Describe(VmLaunchSpec spec)
    {
        var parts = new List<string>();
        if (spec.MaxVcpus is { } max)
        {
            parts.Add("maxcpus=" + max.ToString(CultureInfo.InvariantCulture));
        }

        parts.Add("diskqueues=" + (spec.DiskQueues ?? spec.Vcpus).ToString(CultureInfo.InvariantCulture));
        parts.Add(spec.Balloon ? "balloon=true" : "balloon=false");
        return string.Join(';', parts);
    }
}
