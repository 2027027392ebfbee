using Corral.Platform;

namespace Corral.Agent.Hosting;

/// <summary>The memory figures this host reports (host_metrics and its performance data alike).</summary>
public static class HostMemory
{
    /// <summary>
    /// Total: what the host offers VMs (configured, else the machine's). Free: that total less what the VMs running here
    /// were given (<paramref name="vmBytes"/>), and never more than the kernel has available: as XenServer reports a
    /// host's free memory once its VMs have theirs. (Hosts sharing one machine, as the lab's, each offer a part of it.)
    /// </summary>
    public static (long TotalBytes, long FreeBytes) Read(AgentOptions options, long vmBytes = 0)
    {
        var machine = MachineInfo.ReadMemory();
        var total = options.MemoryTotalBytes > 0 ? options.MemoryTotalBytes : machine.TotalBytes;
        return (total, Math.Max(0, Math.Min(total - vmBytes, machine.AvailableBytes)));
    }
}
