using Corral.Hypervisor.Qemu;
using Microsoft.Extensions.Options;

namespace Corral.FenceDaemon;

/// <summary>
/// The host's VM processes, found as the agent leaves them (one runtime directory per VM, named by its uuid, with
/// QEMU's pidfile): those an agent that has since died started, and one it was starting, included. A pid counts only
/// while it is that VM's QEMU (<see cref="VmProcessTable"/>), so a reused pid is never killed.
/// </summary>
public sealed class VmProcesses(IOptions<FenceOptions> options)
{
    public IReadOnlyList<(string VmUuid, int Pid)> Running()
    {
        var running = new List<(string, int)>();
        var root = options.Value.QemuRuntimeDirectory;
        if (!Directory.Exists(root))
        {
            return running;
        }

        foreach (var directory in Directory.EnumerateDirectories(root))
        {
            var uuid = Path.GetFileName(directory);
            if (VmProcessTable.ReadPidFile(new VmRuntimePaths(directory).PidFile) is { } pid && VmProcessTable.IsRunningVm(pid, uuid))
            {
                running.Add((uuid, pid));
            }
        }

        return running;
    }

    /// <summary>SIGKILL, which cannot block; true when a signal was sent.</summary>
    public static bool Kill(string vmUuid, int pid) => VmProcessTable.KillVm(pid, vmUuid);
}
