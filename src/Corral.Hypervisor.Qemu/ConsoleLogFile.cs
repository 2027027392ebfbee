namespace Corral.Hypervisor.Qemu;

/// <summary>
/// A VM's serial console log (QEMU's chardev <c>logfile</c>, opened for appending), kept bounded: past a size, its last
/// <c>maxBytes</c> are set aside as <c>console.log.1</c> (replacing the previous one) and the log starts afresh, so a
/// guest printing without end uses at most twice that of its host's RAM-backed runtime directory. QEMU appends, so the
/// emptied file simply fills again from its start; what QEMU writes between the copy and the emptying is lost.
/// </summary>
public static class ConsoleLogFile
{
    public static string PreviousPath(string path) => path + ".1";

    /// <summary>Sets the log aside if it is larger than <paramref name="maxBytes"/>; true if it did.</summary>
    public static bool KeepBounded(string path, long maxBytes)
    {
        var info = new FileInfo(path);
        if (!info.Exists || info.Length <= maxBytes)
        {
            return false;
        }

        using (var log = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete))
        {
            var keep = (int)Math.Min(maxBytes, log.Length);
            var tail = new byte[keep];
            log.Position = log.Length - keep;
            log.ReadExactly(tail);
            File.WriteAllBytes(PreviousPath(path), tail);
            log.SetLength(0);
        }

        return true;
    }

    /// <summary>The log's last <paramref name="maxBytes"/>, reaching into the set-aside part when the current one is shorter.</summary>
    public static async Task<byte[]> ReadTailAsync(string path, int maxBytes, CancellationToken cancellationToken)
    {
        var current = await TailAsync(path, maxBytes, cancellationToken);
        if (current.Length >= maxBytes)
        {
            return current;
        }

        var previous = await TailAsync(PreviousPath(path), maxBytes - current.Length, cancellationToken);
        return [.. previous, .. current];
    }

    private static async Task<byte[]> TailAsync(string path, int maxBytes, CancellationToken cancellationToken)
    {
        try
        {
            await using var log = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, bufferSize: 1, useAsync: true);
            var start = Math.Max(0, log.Length - maxBytes);
            log.Position = start;
            var tail = new byte[log.Length - start];
            await log.ReadExactlyAsync(tail, cancellationToken);
            return tail;
        }
        catch (FileNotFoundException)
        {
            return [];
        }
    }
}
