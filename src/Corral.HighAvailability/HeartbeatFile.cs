using System.Globalization;

namespace Corral.HighAvailability;

/// <summary>
/// A host's storage heartbeat on the heartbeat SR: one file per host, named by its uuid, in the statefile directory,
/// holding a counter that moves with each write (and the writer's time, for people). Written to a temporary file,
/// synced, and renamed over the old one, so that a reader never sees half a write.
/// </summary>
public static class HeartbeatFile
{
    public static string PathOf(string directory, string hostUuid) => Path.Combine(directory, hostUuid);

    /// <summary>The counter a host last wrote, or null when it never wrote one (or it cannot be read now).</summary>
    public static long? Read(string directory, string hostUuid)
    {
        try
        {
            var text = File.ReadAllText(PathOf(directory, hostUuid)).Split(' ');
            return long.Parse(text[0], CultureInfo.InvariantCulture);
        }
        catch (Exception ex) when (ex is IOException or FormatException or UnauthorizedAccessException or IndexOutOfRangeException)
        {
            return null;
        }
    }

    /// <summary>Writes and syncs <paramref name="counter"/>; throws <see cref="IOException"/> when the storage refuses.</summary>
    public static void Write(string directory, string hostUuid, long counter, DateTime nowUtc)
    {
        Directory.CreateDirectory(directory);
        var path = PathOf(directory, hostUuid);
        var temporary = path + ".new";
        using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.Read))
        {
            using var writer = new StreamWriter(file);
            writer.Write(string.Create(CultureInfo.InvariantCulture, $"{counter} {nowUtc:O}\n"));
            writer.Flush();
            file.Flush(flushToDisk: true);
        }

        File.Move(temporary, path, overwrite: true);
    }
}
