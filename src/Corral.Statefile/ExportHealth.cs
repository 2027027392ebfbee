using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Corral.Platform;

namespace Corral.Statefile;

/// <summary>What a check of an export found.</summary>
public enum ExportState
{
    /// <summary>A read of its first block came back in time.</summary>
    Answers,

    /// <summary>Its daemon is gone (reads fail at once, ENOTCONN) or it shows something else: it is made again.</summary>
    Dead,

    /// <summary>Reads have hung for less than <see cref="ExportTimings.StuckPatience"/>: a stall, left to pass.</summary>
    Slow,

    /// <summary>
    /// Reads have hung for longer, while the volume answers a fresh connection of QEMU's own driver: the daemon is stuck
    /// (seen with libiscsi after a long path loss: it spins and never answers again), so it is made again.
    /// </summary>
    Stuck,

    /// <summary>Reads have hung for longer, and the storage does not answer a fresh connection either: an outage.</summary>
    StorageSilent,

    /// <summary>Its daemon was stopped (SIGSTOP: a debugger, an administrator, <c>./lab stall-storage</c>): left alone.</summary>
    Stopped,
}

/// <summary>
/// Reads an export's first block (O_DIRECT) with a deadline, on a thread of its own (a read of a FUSE file whose daemon
/// stopped answering cannot be called back, and waits until the daemon answers or dies); one such read per export at a
/// time. A read that has hung for <see cref="ExportTimings.StuckPatience"/> is told apart, by a read of the same volume through a
/// fresh connection (<c>qemu-io</c>, QEMU's same driver), from an outage of the storage itself.
/// </summary>
internal sealed class ExportHealth(ExportTimings timings)
{
    private readonly ConcurrentDictionary<string, Probe> _probes = new(StringComparer.Ordinal);

    private sealed record Probe(Task<bool> Read, long Started);

    public async Task<ExportState> CheckAsync(VolumeExport volume, int? daemonPid, CancellationToken cancellationToken)
    {
        var probe = _probes.GetOrAdd(volume.Path, path => new Probe(ReadFirstBlockAsync(path, volume.Size), Stopwatch.GetTimestamp()));
        var left = timings.ReadDeadline - Stopwatch.GetElapsedTime(probe.Started);
        if (left > TimeSpan.Zero)
        {
            await Task.WhenAny(probe.Read, Task.Delay(left, cancellationToken));
            cancellationToken.ThrowIfCancellationRequested();
        }

        if (probe.Read.IsCompleted)
        {
            _probes.TryRemove(new KeyValuePair<string, Probe>(volume.Path, probe));
            return probe.Read.Result ? ExportState.Answers : ExportState.Dead;
        }

        if (daemonPid is { } pid && IsStopped(pid))
        {
            // The patience counts from when it last ran: once it goes on, its reads get the whole patience to answer.
            _probes.TryUpdate(volume.Path, probe with { Started = Stopwatch.GetTimestamp() }, probe);
            return ExportState.Stopped;
        }

        if (Stopwatch.GetElapsedTime(probe.Started) < timings.StuckPatience)
        {
            return ExportState.Slow;
        }

        return await ReadsFreshAsync(volume, cancellationToken) ? ExportState.Stuck : ExportState.StorageSilent;
    }

    /// <summary>Forgets the export's hung read once its daemon is gone (the read then fails and ends).</summary>
    public void Forget(string path) => _probes.TryRemove(path, out _);

    /// <summary>True when the first block reads back whole, false when the read fails (a dead daemon, a short file).</summary>
    private static Task<bool> ReadFirstBlockAsync(string path, long size)
    {
        var done = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                DirectFile.Read(path, 0, new byte[DirectFile.BlockSize]);
                done.SetResult(new FileInfo(path).Length >= size);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                done.SetResult(false);
            }
        })
        {
            IsBackground = true,
            Name = "export-probe",
        };
        thread.Start();
        return done.Task;
    }

    /// <summary>Whether the process is stopped by a signal or a tracer (state T or t in /proc).</summary>
    internal static bool IsStopped(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
            // "pid (comm) S ...": the state follows the last ')' (comm may hold any character).
            var state = stat[(stat.LastIndexOf(')') + 2)..].TrimStart();
            return state.Length > 0 && state[0] is 'T' or 't';
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>Reads the volume's first block through a connection of its own (qemu-io, read-only).</summary>
    private async Task<bool> ReadsFreshAsync(VolumeExport volume, CancellationToken cancellationToken)
    {
        var secret = Path.GetTempFileName();
        try
        {
            var arguments = new List<string> { "-r", "--image-opts" };
            if (volume.Password is { } password)
            {
                await File.WriteAllTextAsync(secret, password, cancellationToken);
                arguments.AddRange(["--object", $"secret,id={volume.Node}-secret,file={secret}"]);
            }

            arguments.AddRange(["-c", $"read 0 {DirectFile.BlockSize.ToString(CultureInfo.InvariantCulture)}", volume.Blockdev]);
            var read = await CommandRunner.RunAsync("qemu-io", arguments, cancellationToken, timings.FreshReadDeadline);
            return read.Succeeded && (read.StandardOutput + read.StandardError).Contains($"read {DirectFile.BlockSize}/{DirectFile.BlockSize} bytes", StringComparison.Ordinal);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return false; // no answer in time
        }
        finally
        {
            File.Delete(secret);
        }
    }
}

/// <summary>How an export's health is judged.</summary>
/// <param name="ReadDeadline">How long a read of the export may take before it counts as hung.</param>
/// <param name="StuckPatience">How long reads may hang before the daemon is suspected: past any storage stall HA and
/// sanlock ride through without harm (a stall is not made worse by a new daemon: its reads would hang too).</param>
/// <param name="FreshReadDeadline">How long the fresh connection's read may take.</param>
internal sealed record ExportTimings(TimeSpan ReadDeadline, TimeSpan StuckPatience, TimeSpan FreshReadDeadline)
{
    public static readonly ExportTimings Default = new(TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(15));

    public ExportTimings Validated() =>
        ReadDeadline > TimeSpan.Zero && StuckPatience > ReadDeadline && FreshReadDeadline > TimeSpan.Zero
            ? this
            : throw new ArgumentException($"export timings: need 0 < read deadline ({ReadDeadline}) < stuck patience ({StuckPatience}), and a fresh read deadline ({FreshReadDeadline}) > 0");
}
