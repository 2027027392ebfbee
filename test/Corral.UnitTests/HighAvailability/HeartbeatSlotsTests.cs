using Corral.Statefile;
using Xunit;

namespace Corral.UnitTests.HighAvailability;

/// <summary>The statefile volume's slots, on a plain file (the export's file behaves as one): each host's block its own.</summary>
public sealed class HeartbeatSlotsTests : IDisposable
{
    private const string A = "4f0c6f53-1d0e-4a39-9d43-6f0e5f3c0a11";
    private const string B = "8b2d1f7e-5c3a-4e8b-a0f9-2d7c6e1b4f22";
    private const string C = "c9e4a2b1-7f6d-4c8e-b3a5-9e1f0d2c6b33";
    private readonly string _file = Path.Combine(Path.GetTempPath(), $"corral-slots-{Guid.NewGuid():N}");

    public HeartbeatSlotsTests()
    {
        using var volume = File.Create(_file);
        volume.SetLength(HeartbeatSlots.VolumeSize);
    }

    public void Dispose() => File.Delete(_file);

    [Fact]
    public void The_volume_an_sr_keeps_for_the_statefile_holds_every_slot()
    {
        Assert.Equal(HeartbeatSlots.VolumeSize, Corral.Storage.SharedVolume.Statefile.Size);
        Assert.Equal(255, Corral.Agent.Storage.LeaseVolumes.Capacity);
    }

    [Fact]
    public void Each_host_writes_its_own_slot_and_reads_see_every_hosts_counter()
    {
        var slots = new HeartbeatSlots(_file, [A, B, C]);
        var now = new DateTime(2026, 12, 6, 12, 0, 0, DateTimeKind.Utc);
        slots.Write(B, 7, now);
        slots.Write(A, 3, now);
        slots.Write(B, 8, now);

        Assert.Equal(3, slots.Read(A));
        Assert.Equal(8, slots.Read(B));
        Assert.Null(slots.Read(C)); // never written: zeros
        var (counters, complete) = slots.ReadAll();
        Assert.True(complete);
        Assert.Equal(new Dictionary<string, long> { [A] = 3, [B] = 8 }, counters);

        // In place, a block each: B's slot is the second 4 KiB, and A's write left it alone.
        var bytes = File.ReadAllBytes(_file);
        Assert.StartsWith($"corral-heartbeat {B} 8 ", System.Text.Encoding.ASCII.GetString(bytes, 4096, 100), StringComparison.Ordinal);
        Assert.All(bytes[(2 * 4096)..], b => Assert.Equal(0, b));
    }

    [Fact]
    public void A_slot_holding_another_hosts_heartbeat_is_one_never_written()
    {
        // HA enabled again after the pool changed: slot 0 still holds what A wrote there under the earlier order.
        new HeartbeatSlots(_file, [A, B]).Write(A, 41, DateTime.UtcNow);
        var now = new HeartbeatSlots(_file, [C, A]);
        Assert.Null(now.Read(C));
        Assert.Null(now.Read(A));
        Assert.Empty(now.ReadAll().Counters);
        Assert.Null(now.Read("not-in-the-pool"));
        Assert.Throws<IOException>(() => now.Write(B, 1, DateTime.UtcNow));
    }

    [Fact]
    public void A_slot_is_parsed_only_whole_and_for_its_host()
    {
        var block = HeartbeatSlots.Encode(A, 12, DateTime.UtcNow);
        Assert.Equal(4096, block.Length);
        Assert.Equal(12, HeartbeatSlots.Parse(block, A));
        Assert.Null(HeartbeatSlots.Parse(block, B));
        Assert.Null(HeartbeatSlots.Parse(new byte[4096], A));
        Assert.Null(HeartbeatSlots.Parse("corral-heartbeat x 1"u8.ToArray(), "x")); // no line end: a torn write
        Assert.Null(HeartbeatSlots.Parse("corral-heartbeat x -1 t\n"u8.ToArray(), "x"));
    }

    [Fact]
    public void A_volume_that_cannot_be_read_is_an_io_error_and_no_counter()
    {
        var missing = new HeartbeatSlots(_file + ".gone", [A]);
        Assert.Throws<IOException>(() => missing.ReadAll());
        Assert.Null(missing.Read(A));
    }
}
