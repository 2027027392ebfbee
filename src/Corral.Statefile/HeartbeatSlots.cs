using System.Globalization;
using System.Text;

namespace Corral.Statefile;

/// <summary>
/// The heartbeats in a statefile volume, as xapi keeps its statefile: one 4 KiB slot per host, in the order of
/// <c>slots</c> (the hosts' uuids, fixed when HA was enabled), each written in place with O_DIRECT and synced, so that
/// no host's write ever touches another's block and every read sees the storage, not a cache. A slot holds
/// <c>corral-heartbeat &lt;host uuid&gt; &lt;counter&gt; &lt;time&gt;</c>; one that holds anything else (zeros, an earlier
/// assignment's host) is a heartbeat never written.
/// </summary>
public sealed class HeartbeatSlots(string path, IReadOnlyList<string> slots) : IHeartbeatStore
{
    /// <summary>How many slots a volume holds (4 MiB of them: xapi's statefile size).</summary>
    public const int Capacity = 1024;

    public const long VolumeSize = (long)Capacity * DirectFile.BlockSize;

    private const string Magic = "corral-heartbeat";

    public string Where => path;

    public long? Read(string hostUuid)
    {
        var slot = SlotOf(hostUuid);
        if (slot < 0)
        {
            return null;
        }

        try
        {
            var block = new byte[DirectFile.BlockSize];
            DirectFile.Read(path, (long)slot * DirectFile.BlockSize, block);
            return Parse(block, hostUuid);
        }
        catch (IOException)
        {
            return null;
        }
    }

    public (IReadOnlyDictionary<string, long> Counters, bool Complete) ReadAll()
    {
        // One read of every assigned slot: the heartbeats seen together are of one instant.
        var blocks = new byte[slots.Count * DirectFile.BlockSize];
        DirectFile.Read(path, 0, blocks);
        var counters = new Dictionary<string, long>(StringComparer.Ordinal);
        for (var i = 0; i < slots.Count; i++)
        {
            if (Parse(blocks.AsSpan(i * DirectFile.BlockSize, DirectFile.BlockSize), slots[i]) is { } counter)
            {
                counters[slots[i]] = counter;
            }
        }

        return (counters, true);
    }

    public void Write(string hostUuid, long counter, DateTime nowUtc)
    {
        var slot = SlotOf(hostUuid);
        if (slot < 0)
        {
            throw new IOException($"host {hostUuid} has no slot in the statefile {path}");
        }

        DirectFile.Write(path, (long)slot * DirectFile.BlockSize, Encode(hostUuid, counter, nowUtc));
    }

    internal static byte[] Encode(string hostUuid, long counter, DateTime nowUtc)
    {
        var block = new byte[DirectFile.BlockSize];
        Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{Magic} {hostUuid} {counter} {nowUtc:O}\n"), block);
        return block;
    }

    /// <summary>The slot's counter, when it is <paramref name="hostUuid"/>'s heartbeat.</summary>
    internal static long? Parse(ReadOnlySpan<byte> block, string hostUuid)
    {
        var end = block.IndexOf((byte)'\n');
        if (end < 0)
        {
            return null;
        }

        var fields = Encoding.ASCII.GetString(block[..end]).Split(' ');
        return fields.Length == 4 && fields[0] == Magic && fields[1] == hostUuid
            && long.TryParse(fields[2], NumberStyles.None, CultureInfo.InvariantCulture, out var counter) ? counter : null;
    }

    private int SlotOf(string hostUuid)
    {
        for (var i = 0; i < slots.Count && i < Capacity; i++)
        {
            if (slots[i] == hostUuid)
            {
                return i;
            }
        }

        return -1;
    }
}
