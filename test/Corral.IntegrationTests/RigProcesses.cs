using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Corral.IntegrationTests;

/// <summary>
/// What the rigs that run real servers on loopback (<see cref="NfsRig"/>, <see cref="TgtRig"/>, <see cref="SmbRig"/>)
/// share: a machine-wide lock for servers whose ports are fixed, the rig made in a temporary directory of its own under
/// it, a port probe, a daemon started with its output drained, and a daemon stopped by its pid (TERM, then KILL after a
/// grace period).
/// </summary>
internal static class RigProcesses
{
    /// <summary>Takes the lock at <paramref name="path"/>, waiting up to 10 minutes for another test process's rig to let it go.</summary>
    public static async Task<FileStream> LockMachineAsync(string path)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(10);
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(500);
            }
        }
    }

    /// <summary>
    /// A rig made by <paramref name="make"/> (from its temporary directory and the machine lock at
    /// <paramref name="lockPath"/>) and started by <paramref name="start"/>; disposed, the lock with it, when its start fails.
    /// </summary>
    public static async Task<T> StartRigAsync<T>(string lockPath, string prefix, Func<string, FileStream, T> make, Func<T, Task> start)
        where T : IAsyncDisposable
    {
        var machineLock = await LockMachineAsync(lockPath);
        var rig = make(Directory.CreateTempSubdirectory(prefix).FullName, machineLock);
        try
        {
            await start(rig);
            return rig;
        }
        catch
        {
            await rig.DisposeAsync();
            throw;
        }
    }

    /// <summary>Whether something accepts connections on 127.0.0.1:<paramref name="port"/>.</summary>
    public static bool Listening(int port)
    {
        try
        {
            using var client = new TcpClient();
            client.Connect(IPAddress.Loopback, port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>Starts a daemon in the foreground, its output drained so a chatty one never blocks on a full pipe.</summary>
    public static Process Start(string program, params string[] arguments)
    {
        var process = Process.Start(new ProcessStartInfo(program, arguments)
        {
            UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true,
        })!;
        _ = process.StandardOutput.ReadToEndAsync();
        _ = process.StandardError.ReadToEndAsync();
        return process;
    }

    /// <summary>Stops <paramref name="process"/> by its pid: TERM, then KILL when it has not ended within <paramref name="patience"/>.</summary>
    public static async Task StopAsync(Process? process, TimeSpan patience)
    {
        if (process is null)
        {
            return;
        }

        using (process)
        {
            if (!process.HasExited)
            {
                using (Process.Start("kill", ["-TERM", process.Id.ToString(CultureInfo.InvariantCulture)]))
                {
                }

                using var wait = new CancellationTokenSource(patience);
                try
                {
                    await process.WaitForExitAsync(wait.Token);
                }
                catch (OperationCanceledException)
                {
                    process.Kill();
                    await process.WaitForExitAsync();
                }
            }
        }
    }
}
