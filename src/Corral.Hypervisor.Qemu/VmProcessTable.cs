using System.Globalization;
using System.Runtime.InteropServices;

namespace Corral.Hypervisor.Qemu;

/// <summary>
/// Looks QEMU processes up in /proc. Daemonized QEMU is not our child, so its pid is all we hold; a pid counts as a VM's
/// process only while its command line carries <c>-uuid &lt;that VM's uuid&gt;</c>, so a reused pid is never mistaken for it.
/// </summary>
public static class VmProcessTable
{
    /// <summary>True while <paramref name="pid"/> is a live (not zombie) QEMU started with <c>-uuid <paramref name="vmUuid"/></c>.</summary>
    public static bool IsRunningVm(int pid, string vmUuid)
    {
        if (pid <= 0)
        {
            return false;
        }

        try
        {
            var arguments = File.ReadAllText($"/proc/{pid}/cmdline").Split('\0');
            var named = false;
            for (var i = 0; i + 1 < arguments.Length; i++)
            {
                if (arguments[i] == "-uuid" && string.Equals(arguments[i + 1], vmUuid, StringComparison.OrdinalIgnoreCase))
                {
                    named = true;
                    break;
                }
            }

            if (!named)
            {
                return false;
            }

            // A zombie has exited; only its parent has not reaped it yet. The state follows the ") " after the command name.
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var state = stat[(stat.LastIndexOf(')') + 2)..];
            return !state.StartsWith('Z') && !state.StartsWith('X');
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentOutOfRangeException)
        {
            return false;
        }
    }

    /// <summary>Sends SIGKILL to <paramref name="pid"/> only after checking it still is this VM's QEMU. True if a signal was sent.</summary>
    public static bool KillVm(int pid, string vmUuid)
    {
        if (!IsRunningVm(pid, vmUuid))
        {
            return false;
        }

        if (NativeMethods.Kill(pid, NativeMethods.SigKill) == 0)
        {
            return true;
        }

        var error = Marshal.GetLastPInvokeError();
        return error == NativeMethods.Esrch
            ? false
            : throw new IOException($"kill({pid}, SIGKILL) failed: {Marshal.GetPInvokeErrorMessage(error)}");
    }

    /// <summary>The pid in a QEMU pidfile, or null when the file is missing or unreadable.</summary>
    public static int? ReadPidFile(string path)
    {
        try
        {
            return int.TryParse(File.ReadAllText(path).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && pid > 0 ? pid : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
