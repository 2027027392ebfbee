using System.Diagnostics;
using System.Globalization;
using System.Text;
using Corral.HighAvailability;
using Corral.Statefile;
using Corral.Storage;
using Corral.Storage.Iscsi;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>
/// HA's statefile on the SRs a host reaches only in userspace, against real servers (nfs-ganesha, tgt on loopback): the
/// SR's statefile volume is made once however many hosts ask at once, and Debian's qemu-storage-daemon exports it on
/// each host as a file (FUSE) in which each host's heartbeat slot, written with O_DIRECT, is read by the others through
/// their own exports; an export whose daemon died is made again with the heartbeats where they were.
/// </summary>
public sealed class StatefileVolumeTests(AgentFixture pool) : IClassFixture<AgentFixture>
{
    private const string HostA = "4f0c6f53-1d0e-4a39-9d43-6f0e5f3c0a11";
    private const string HostB = "8b2d1f7e-5c3a-4e8b-a0f9-2d7c6e1b4f22";

    [Fact]
    public async Task An_nfs_srs_statefile_is_one_file_on_the_export_each_hosts_slot_read_by_the_other_through_its_export()
    {
        await using var nfs = await NfsRig.StartAsync();
        var (sr, srUuid, location) = await pool.CreateNfsSrAsync(nfs, "NFS HA");
        var volume = await pool.SharedVolumeMadeOnceAsync("nfs", location, srUuid, SharedVolume.Statefile, "statefile");

        var onServer = Path.Combine(nfs.ExportDirectory, srUuid, ".corral-ha-statefile.raw");
        Assert.Equal(HeartbeatSlots.VolumeSize, new FileInfo(onServer).Length);
        Assert.Equal([onServer], Directory.GetFiles(Path.GetDirectoryName(onServer)!, ".corral-ha-statefile*"));
        await ExportedOnTwoHostsAsync(volume, offset => Bytes(onServer, offset));

        // Not a VDI: a scan leaves it out; the SR's destruction removes it.
        await pool.DestroyEmptyAsync(sr);
        Assert.False(File.Exists(onServer));
    }

    [Fact]
    public async Task An_iscsi_srs_statefile_is_one_extent_of_the_lun_apart_from_the_vdis_and_freed_with_the_sr()
    {
        await using var tgt = await TgtRig.StartAsync();
        var (sr, srUuid, location) = await pool.CreateIscsiSrAsync("iSCSI HA");
        var volume = await pool.SharedVolumeMadeOnceAsync("lvmoiscsi", location, srUuid, SharedVolume.Statefile, "statefile");

        var extents = ((Dictionary<string, object?>)(await pool.S("SR.get_sm_config", sr))!)["corral-extents"] as string;
        var extent = System.Text.Json.JsonSerializer.Deserialize<Dictionary<string, string>>(extents!)!["ha-statefile"].Split('+');
        var offset = long.Parse(extent[0], CultureInfo.InvariantCulture);
        Assert.Equal(HeartbeatSlots.VolumeSize, long.Parse(extent[1], CultureInfo.InvariantCulture));
        await ExportedOnTwoHostsAsync(volume, at => Bytes(tgt.BackingFile, offset + at));

        // A VDI made after it gets an extent of its own; a scan lists the VDI only; with the VDI gone the SR is empty.
        var vdi = (string)(await pool.S("VDI.create", new Dictionary<string, object?>
        {
            ["SR"] = sr, ["name_label"] = "disk", ["name_description"] = "", ["virtual_size"] = 8L << 20, ["type"] = "user",
        }))!;
        var vdiOffset = long.Parse(((string)(await pool.S("VDI.get_location", vdi))!).Split('.')[1].Split('+')[0], CultureInfo.InvariantCulture);
        Assert.True(vdiOffset >= offset + HeartbeatSlots.VolumeSize || vdiOffset + (8L << 20) <= offset, $"the VDI at {vdiOffset} overlaps the statefile at {offset}");
        await pool.S("SR.scan", sr);
        Assert.Equal([vdi], (List<object?>)(await pool.S("SR.get_VDIs", sr))!);
        await pool.S("VDI.destroy", vdi);
        await pool.S("PBD.unplug", await pool.MyPbdAsync(sr));
        await pool.S("SR.destroy", sr);
    }

    /// <summary>
    /// The volume exported for two hosts, as two hosts' exports of it: each writes its slot, each reads both through its
    /// own daemon, and the storage holds them (<paramref name="onStorage"/>: the bytes at an offset of the volume).
    /// </summary>
    private static async Task ExportedOnTwoHostsAsync((string Blockdev, string? Password) made, Func<long, string> onStorage)
    {
        var root = Directory.CreateTempSubdirectory("corral-statefile-it-").FullName;
        var exports = new VolumeExports(NullLogger<VolumeExports>.Instance);
        var a = new StatefileVolume(Path.Combine(root, "a.statefile"), [HostA, HostB], made.Blockdev, made.Password);
        var b = a with { Path = Path.Combine(root, "b.statefile") };
        try
        {
            await exports.EnsureAsync(a, default);
            await exports.EnsureAsync(b, default);
            var pid = int.Parse(File.ReadAllText(a.Path + ".pid").Trim(), CultureInfo.InvariantCulture);
            await exports.EnsureAsync(a, default);
            Assert.Equal(pid, int.Parse(File.ReadAllText(a.Path + ".pid").Trim(), CultureInfo.InvariantCulture));

            var onA = new HeartbeatSlots(a.Path, a.Slots);
            var onB = new HeartbeatSlots(b.Path, b.Slots);
            onA.Write(HostA, 5, DateTime.UtcNow);
            onB.Write(HostB, 9, DateTime.UtcNow);
            var both = new Dictionary<string, long> { [HostA] = 5, [HostB] = 9 };
            Assert.Equal(both, onB.ReadAll().Counters);
            Assert.Equal(both, onA.ReadAll().Counters);
            onA.Write(HostA, 6, DateTime.UtcNow);
            Assert.Equal(6, onB.Read(HostA));
            Assert.StartsWith($"corral-heartbeat {HostA} 6 ", onStorage(0), StringComparison.Ordinal);
            Assert.StartsWith($"corral-heartbeat {HostB} 9 ", onStorage(4096), StringComparison.Ordinal);

            // A's daemon killed: its file answers nothing (a stale FUSE mount); exported again, the heartbeats are there.
            using (var daemon = Process.GetProcessById(pid))
            {
                daemon.Kill();
            }

            await WaitAsync(() => !Directory.Exists($"/proc/{pid}"), "the killed qemu-storage-daemon to go");
            Assert.Throws<IOException>(() => onA.ReadAll());
            await exports.EnsureAsync(a, default);
            Assert.NotEqual(pid, int.Parse(File.ReadAllText(a.Path + ".pid").Trim(), CultureInfo.InvariantCulture));
            Assert.Equal(new Dictionary<string, long> { [HostA] = 6, [HostB] = 9 }, onA.ReadAll().Counters);
        }
        finally
        {
            await exports.StopAsync(a.Path, default);
            await exports.StopAsync(b.Path, default);
            Assert.False(VolumeExports.IsMounted(a.Path));
            Assert.False(VolumeExports.IsMounted(b.Path));
            Assert.False(File.Exists(a.Path + ".pid"));
            Directory.Delete(root, recursive: true);
        }
    }

    private static string Bytes(string file, long offset)
    {
        using var stream = File.OpenRead(file);
        stream.Position = offset;
        var bytes = new byte[100];
        stream.ReadExactly(bytes);
        return Encoding.ASCII.GetString(bytes);
    }

    private static async Task WaitAsync(Func<bool> done, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!done())
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"waited 10 s for {what}");
            await Task.Delay(50);
        }
    }
}
