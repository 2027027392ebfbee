using Corral.HighAvailability;

namespace Corral.Statefile;

/// <summary>Every host's storage heartbeat, as one host reaches them (<see cref="HeartbeatFile"/>, <see cref="HeartbeatSlots"/>).</summary>
public interface IHeartbeatStore
{
    /// <summary>Where the heartbeats are, for people (a directory, or the file a volume is exported as).</summary>
    string Where { get; }

    /// <summary>The counter a host last wrote, or null when it never wrote one (or it cannot be read now).</summary>
    long? Read(string hostUuid);

    /// <summary>
    /// Every heartbeat there, by host uuid; <c>Complete</c> false when one could not be read (only a read of every
    /// heartbeat is evidence that the ones that did not move stood still).
    /// </summary>
    /// <exception cref="IOException">The statefile cannot be read now.</exception>
    (IReadOnlyDictionary<string, long> Counters, bool Complete) ReadAll();

    /// <summary>Writes and syncs <paramref name="counter"/>; throws <see cref="IOException"/> when the storage refuses.</summary>
    void Write(string hostUuid, long counter, DateTime nowUtc);
}

public static class HeartbeatStores
{
    /// <summary>The store of a statefile directory (a file SR's), or of a volume's export (an NFS or iSCSI SR's).</summary>
    public static IHeartbeatStore For(string? directory, StatefileVolume? volume) =>
        volume is not null ? new HeartbeatSlots(volume.Path, volume.Slots)
        : directory is not null ? new HeartbeatDirectory(directory)
        : throw new ArgumentException("a statefile is a directory or a volume");
}

/// <summary>A file SR's statefile: a directory with one <see cref="HeartbeatFile"/> per host, named by its uuid.</summary>
public sealed class HeartbeatDirectory(string directory) : IHeartbeatStore
{
    public string Where => directory;

    public long? Read(string hostUuid) => HeartbeatFile.Read(directory, hostUuid);

    public (IReadOnlyDictionary<string, long> Counters, bool Complete) ReadAll()
    {
        var counters = new Dictionary<string, long>(StringComparer.Ordinal);
        var complete = true;
        // One file per host, named by its uuid: anything else there (a write under way, "<uuid>.new") is not read, and
        // could block the read (a FIFO opens only once someone writes to it).
        foreach (var uuid in Directory.EnumerateFiles(directory).Select(Path.GetFileName).Where(f => Guid.TryParse(f, out _)))
        {
            if (HeartbeatFile.Read(directory, uuid!) is { } counter)
            {
                counters[uuid!] = counter;
            }
            else
            {
                complete = false;
            }
        }

        return (counters, complete);
    }

    public void Write(string hostUuid, long counter, DateTime nowUtc) => HeartbeatFile.Write(directory, hostUuid, counter, nowUtc);
}
