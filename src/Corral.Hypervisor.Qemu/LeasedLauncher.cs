using System.Diagnostics;

namespace Corral.Hypervisor.Qemu;

/// <summary>
/// Starts a VM's QEMU under its lease (<see cref="IVmLeaseLauncher"/>): the lease manager's client takes the lease for a
/// process of its own and becomes QEMU, run in the foreground in a session of its own (<c>setsid</c>, which does not fork
/// here: the shell it replaces leads no process group), with its output in the VM's <c>launch.log</c>. So QEMU's pid
/// is the pid that holds the lease, and, as a daemonized QEMU, it outlives the agent and is adopted by the next one.
/// </summary>
internal static class LeasedLauncher
{
    private const string LogName = "launch.log";

    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(20);

    /// <summary>Launches the command and returns QEMU's pid once its monitor socket exists.</summary>
    /// <exception cref="VmStartException">The lease was refused, QEMU failed, or neither happened in <paramref name="timeout"/>.</exception>
    public static async Task<int> LaunchAsync(IVmLeaseLauncher launcher, LeasedCommand command, VmRuntimePaths paths, TimeSpan timeout,
        CancellationToken cancellationToken)
    {
        var info = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add("exec setsid \"$@\" </dev/null >>\"$0\" 2>&1");
        info.ArgumentList.Add(Path.Combine(paths.Directory, LogName));
        info.ArgumentList.Add(command.Program);
        foreach (var argument in command.Arguments)
        {
            info.ArgumentList.Add(argument);
        }

        foreach (var (name, value) in command.Environment)
        {
            info.Environment[name] = value;
        }

        var process = Process.Start(info) ?? throw new VmStartException($"could not start {command.Program}");
        // The child is this process's until it exits: reaped then, whoever stops it.
        var exitCode = process.WaitForExitAsync(CancellationToken.None).ContinueWith(_ =>
        {
            var code = process.ExitCode;
            process.Dispose();
            return code;
        }, TaskScheduler.Default);
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            if (exitCode.IsCompleted)
            {
                throw new VmStartException($"the VM's process exited with {await exitCode} while starting{Said(paths, launcher)}");
            }

            if (File.Exists(paths.Qmp) && VmProcessTable.ReadPidFile(paths.PidFile) is { } pid)
            {
                return pid;
            }

            if (deadline.Elapsed > timeout)
            {
                throw new VmStartException($"QEMU did not finish initializing within {timeout.TotalSeconds} s{Said(paths, launcher)}");
            }

            await Task.Delay(Poll, cancellationToken);
        }
    }

    /// <summary>What the launch printed (the lease manager's refusal, QEMU's error), as ": ..." to append to a message; "" when nothing.</summary>
    public static string Said(VmRuntimePaths paths, IVmLeaseLauncher? launcher)
    {
        try
        {
            var text = File.ReadAllText(Path.Combine(paths.Directory, LogName)).Trim();
            return text.Length == 0 ? "" : $": {launcher?.Explain(text) ?? text}";
        }
        catch (IOException)
        {
            return "";
        }
        catch (UnauthorizedAccessException)
        {
            return "";
        }
    }

    /// <summary>A program named without a directory, found on PATH (the lease manager's client runs it by its path).</summary>
    public static string ResolveProgram(string program)
    {
        if (program.Contains('/', StringComparison.Ordinal))
        {
            return Path.GetFullPath(program);
        }

        foreach (var directory in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(directory, program);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new VmStartException($"{program} is not on PATH");
    }
}
