using System.ComponentModel;
using System.Runtime.InteropServices;
using Corral.Platform;
using Microsoft.Extensions.Logging;

namespace Corral.Hypervisor.Qemu;

/// <summary>
/// A VM's virtual TPM 2.0: Debian's <c>swtpm</c> in socket mode, one per VM, its state in the VM's runtime directory.
/// It is a daemon, as QEMU is, so that it outlives a restarted agent with its VM; started with <c>--terminate</c>, it
/// ends when QEMU's connection to its control socket closes, that is when the VM's QEMU ends, whatever ended it. Corral
/// holds it by pid (its pidfile), checked against its command line, to stop it when QEMU never connected.
/// QEMU's <c>tpm-emulator</c> carries the TPM's state in a live migration's stream, so the destination's swtpm starts
/// empty-handed and is given the state by the incoming QEMU.
/// </summary>
internal static class Swtpm
{
    /// <summary>swtpm's file for a TPM 2.0's persistent state in its state directory (its NVRAM: keys, NV indexes, seeds).</summary>
    public const string PermanentStateFile = "tpm2-00.permall";

    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(5);

    /// <summary>Starts the VM's swtpm with its saved state (none: a new TPM, whose seeds swtpm makes at first use).</summary>
    /// <exception cref="VmStartException">swtpm is missing or did not start; the message says why.</exception>
    public static async Task StartAsync(TpmSpec tpm, VmRuntimePaths paths, QemuOptions options, ILogger logger, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(paths.TpmState);
        if (!OperatingSystem.IsWindows())
        {
            // The TPM's state is the guest's secrets: readable by root only.
            File.SetUnixFileMode(paths.TpmState, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        if (tpm.State is { Length: > 0 } state)
        {
            await File.WriteAllBytesAsync(Path.Combine(paths.TpmState, PermanentStateFile), state, cancellationToken);
        }

        string[] arguments =
        [
            "socket", "--tpm2",
            "--tpmstate", $"dir={QemuCommandLine.Escape(paths.TpmState)},mode=0600",
            "--ctrl", $"type=unixio,path={QemuCommandLine.Escape(paths.TpmSocket)},mode=0600",
            "--pid", $"file={QemuCommandLine.Escape(paths.TpmPidFile)}",
            "--log", $"file={QemuCommandLine.Escape(paths.TpmLog)},level=1",
            "--daemon", "--terminate",
        ];
        CommandResult result;
        try
        {
            result = await CommandRunner.RunAsync(options.SwtpmBinary, arguments, cancellationToken, options.StartTimeout);
        }
        catch (Win32Exception ex)
        {
            throw new VmStartException($"the VM has a vTPM and this host cannot run {options.SwtpmBinary} (Debian's swtpm package): {ex.Message}");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new VmStartException($"the VM's vTPM (swtpm) did not start within {options.StartTimeout.TotalSeconds} s");
        }

        if (!result.Succeeded || !File.Exists(paths.TpmSocket) || RunningPid(paths) is null)
        {
            var said = (result.StandardError.Trim() + " " + ReadLog(paths)).Trim();
            throw new VmStartException($"the VM's vTPM (swtpm) did not start: {(said.Length > 0 ? said : $"exit code {result.ExitCode}")}");
        }

        logger.LogInformation("VM {Vm}: vTPM (swtpm pid {Pid}) started{Restored}", paths.Directory, RunningPid(paths),
            tpm.State is { Length: > 0 } ? " with its saved state" : ", new");
    }

    /// <summary>The TPM's persistent state as swtpm last wrote it (it writes through on every change); null if none yet.</summary>
    public static byte[]? ReadState(VmRuntimePaths paths)
    {
        var file = Path.Combine(paths.TpmState, PermanentStateFile);
        return File.Exists(file) ? File.ReadAllBytes(file) : null;
    }

    /// <summary>The pid of the VM's swtpm while it runs: the pidfile's, if that process is swtpm serving this VM's socket.</summary>
    public static int? RunningPid(VmRuntimePaths paths)
    {
        if (VmProcessTable.ReadPidFile(paths.TpmPidFile) is not { } pid)
        {
            return null;
        }

        try
        {
            var arguments = File.ReadAllText($"/proc/{pid}/cmdline").Split('\0');
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var state = stat[(stat.LastIndexOf(')') + 2)..];
            var serves = arguments.Any(a => a.Contains($"path={QemuCommandLine.Escape(paths.TpmSocket)},", StringComparison.Ordinal));
            return serves && !state.StartsWith('Z') && !state.StartsWith('X') ? pid : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentOutOfRangeException)
        {
            return null;
        }
    }

    /// <summary>
    /// Waits for the VM's swtpm <paramref name="pid"/> to end (it does once QEMU has gone), then stops it if it has not:
    /// QEMU never connected, or it hangs. SIGTERM first, so that it writes what it holds; SIGKILL after a grace period.
    /// Only that process: a newer start of the same VM here has a swtpm of its own, which is left alone.
    /// </summary>
    public static async Task StopAsync(VmRuntimePaths paths, int? pid, ILogger logger, TimeSpan wait)
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var signalled = false;
        while (pid is not null && RunningPid(paths) == pid)
        {
            if (!signalled && watch.Elapsed >= wait)
            {
                logger.LogWarning("VM {Vm}: its vTPM (swtpm pid {Pid}) outlived QEMU; stopping it", paths.Directory, pid);
                Signal(pid.Value, NativeMethods.SigTerm);
                signalled = true;
            }
            else if (watch.Elapsed >= wait + StopGrace)
            {
                Signal(pid.Value, NativeMethods.SigKill);
                await Task.Delay(100);
                return;
            }

            await Task.Delay(50);
        }
    }

    private static void Signal(int pid, int signal)
    {
        if (NativeMethods.Kill(pid, signal) != 0 && Marshal.GetLastPInvokeError() != NativeMethods.Esrch)
        {
            throw new IOException($"kill({pid}, {signal}) failed: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
        }
    }

    private static string ReadLog(VmRuntimePaths paths)
    {
        try
        {
            return File.Exists(paths.TpmLog) ? File.ReadAllText(paths.TpmLog).Trim() : "";
        }
        catch (IOException)
        {
            return "";
        }
    }
}
