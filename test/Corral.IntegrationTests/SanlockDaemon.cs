using System.Diagnostics;
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
}
