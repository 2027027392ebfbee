using System.Diagnostics;
using Corral.Hypervisor;
using Corral.Leases.Sanlock;
using Microsoft.Extensions.Options;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>
/// A test host's sanlock daemon (Debian's): a run directory of its own (its socket), no watchdog, no memory locking or
/// real-time priority (a test machine may not raise its memlock limit), and a client for it with a 1 s I/O timeout
/// (joins take about 3 s). The caller stops the daemon by its process.
/// </summary>
public static class SanlockDaemon
{
    public static (Process Daemon, SanlockClient Client) Start(string runDirectory, string hostName)
    {
        Directory.CreateDirectory(runDirectory);
        var info = new ProcessStartInfo("sanlock") { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var argument in new[] { "daemon", "-D", "-w", "0", "-U", "root", "-G", "root", "-e", hostName })
        {
            info.ArgumentList.Add(argument);
        }

        info.Environment["SANLOCK_RUN_DIR"] = runDirectory;
        info.Environment["SANLOCK_PRIVILEGED"] = "0";
        var daemon = Process.Start(info) ?? throw new InvalidOperationException("could not start sanlock (Debian's sanlock package)");
        daemon.OutputDataReceived += (_, _) => { };
        daemon.ErrorDataReceived += (_, _) => { };
        daemon.BeginOutputReadLine();
        daemon.BeginErrorReadLine();
        var socket = Path.Combine(runDirectory, "sanlock.sock");
        for (var i = 0; i < 100 && !File.Exists(socket); i++)
        {
            Thread.Sleep(50);
        }

        Assert.True(File.Exists(socket), $"sanlock daemon {hostName} did not open {socket}");
        return (daemon, new SanlockClient(Options.Create(new SanlockOptions
        {
            Enabled = true, RunDirectory = runDirectory, IoTimeoutSeconds = 1, JoinTimeout = TimeSpan.FromSeconds(30),
        })));
    }

    /// <summary>
    /// A process that holds <paramref name="lease"/> as a VM's QEMU would (<c>sanlock client command</c>, then a
    /// minute's sleep), what it printed in <paramref name="outputFile"/>.
    /// </summary>
    public static Process Hold(SanlockClient client, VmLease lease, string outputFile)
    {
        // exec: one process, so that killing it closes its registration with the daemon (a child would keep it open).
        var command = new SanlockLeaseLauncher(client).Wrap(lease, "/bin/sh", ["-c", "exec sleep 60"]);
        var info = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add($"exec \"$0\" \"$@\" > {outputFile} 2>&1");
        info.ArgumentList.Add(command.Program);
        foreach (var argument in command.Arguments)
        {
            info.ArgumentList.Add(argument);
        }

        foreach (var (key, value) in command.Environment)
        {
            info.Environment[key] = value;
        }

        return Process.Start(info) ?? throw new InvalidOperationException("could not start sanlock client command");
    }
}
