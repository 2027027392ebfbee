using Corral.Platform;

namespace Corral.Agent.Hosting;

/// <summary>The memory figures this host reports (host_metrics and its performance data alike).</summary>
public static class HostMemory
{
    /// <summary>Total: what the host offers VMs (configured, else the machine's); free: what the kernel has available, at most the total.</summary>
    public static (long TotalBytes, long FreeBytes) Read(AgentOptions options)
    {
        var machine = MachineInfo.ReadMemory();
        var total = options.MemoryTotalBytes > 0 ? options.MemoryTotalBytes : machine.TotalBytes;
        return (total, Math.Min(total, machine.AvailableBytes));
    }
}
