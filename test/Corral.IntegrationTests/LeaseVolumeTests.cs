using System.Diagnostics;
using System.Globalization;
using Corral.Hypervisor;
using Corral.Leases.Sanlock;
using Corral.Statefile;
using Corral.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>
/// The VMs' leases on the SRs a host reaches only in userspace, against real servers (nfs-ganesha, tgt on loopback) and
/// two hosts' real sanlock daemons: the SR's lease volume is made once however many hosts ask at once, each host
/// exports it as a file (qemu-storage-daemon, FUSE) and joins the SR's lockspace at its first MiB through its own
/// export, and a VM's lease in a later MiB, held by a process of one host, is refused to the other and seen held
/// through the other's export.
/// </summary>
public sealed class LeaseVolumeTests(AgentFixture pool) : IClassFixture<AgentFixture>
{
    [Fact]
    public async Task An_nfs_srs_vm_leases_are_one_file_on_the_export_that_two_hosts_lock_through_their_own_exports()
    {
        await using var nfs = await NfsRig.StartAsync();
        var (sr, srUuid, location) = await pool.CreateNfsSrAsync(nfs, "NFS leases");
        var volume = await pool.SharedVolumeMadeOnceAsync("nfs", location, srUuid, SharedVolume.VmLeases, "leases");
        var onServer = Path.Combine(nfs.ExportDirectory, srUuid, ".corral-vm-leases.raw");
        Assert.Equal(SharedVolume.VmLeases.Size, new FileInfo(onServer).Length);
        await LockedFromTwoHostsAsync(srUuid, volume);
        await pool.DestroyEmptyAsync(sr);
        Assert.False(File.Exists(onServer));
    }

    [Fact]
    public async Task An_iscsi_srs_vm_leases_are_one_extent_of_the_lun_that_two_hosts_lock_through_their_own_exports()
    {
        // A LUN with room for the 256 MiB lease volume (sparse: only what is written takes space).
        await using var tgt = await TgtRig.StartAsync(lunSize: 1L << 30);
        var (sr, srUuid, location) = await pool.CreateIscsiSrAsync("iSCSI leases");
        var volume = await pool.SharedVolumeMadeOnceAsync("lvmoiscsi", location, srUuid, SharedVolume.VmLeases, "leases");
        var extents = ((Dictionary<string, object?>)(await pool.S("SR.get_sm_config", sr))!)["corral-extents"] as string;
        var extent = System.Text.Json.JsonSerializer.Deserialize<Dictionary<string, string>>(extents!)!["vm-leases"].Split('+');
        Assert.Equal(SharedVolume.VmLeases.Size, long.Parse(extent[1], CultureInfo.InvariantCulture));
        await LockedFromTwoHostsAsync(srUuid, volume);

        // Not a VDI: a scan leaves it out, and the SR counts as empty.
        await pool.DestroyEmptyAsync(sr);
    }

    /// <summary>Two hosts, each with its own export of the volume and its own sanlock daemon, lock a VM's lease in it.</summary>
    private static async Task LockedFromTwoHostsAsync(string srUuid, (string Blockdev, string? Password) made)
    {
        var root = Directory.CreateTempSubdirectory("corral-leases-it-").FullName;
        var exports = new VolumeExports(NullLogger<VolumeExports>.Instance);
        var a = new VolumeExport(Path.Combine(root, "a.leases"), "leases", made.Blockdev, made.Password, SharedVolume.VmLeases.Size);
        var b = a with { Path = Path.Combine(root, "b.leases") };
        var daemons = new List<Process>();
        Process? holder = null;
        try
        {
            await exports.EnsureAsync(a, default);
            await exports.EnsureAsync(b, default);
            var (hostA, hostB) = (Daemon(root, 1, daemons), Daemon(root, 2, daemons));

            // Nothing written yet: no lockspace, then one written through A's export, read through B's.
            Assert.Equal(SanlockClient.NoLeader, await hostB.ReadLockspaceLeaderAsync(srUuid, b.Path, default));
            Check(await hostA.InitLockspaceAsync(srUuid, a.Path, default), "write the lockspace");
            Assert.Equal(0, await hostB.ReadLockspaceLeaderAsync(srUuid, b.Path, default));
            foreach (var join in await Task.WhenAll(hostA.AddLockspaceAsync(srUuid, 1, a.Path, default), hostB.AddLockspaceAsync(srUuid, 2, b.Path, default)))
            {
                Check(join, "join the lockspace");
            }

            // A VM's lease in slot 3 (the fourth MiB after the lockspace): none there yet, then written and held by A.
            var vm = Guid.NewGuid().ToString();
            var onA = new VmLease(srUuid, vm, a.Path, Offset: 4 * SanlockClient.AreaSize);
            var onB = onA with { Path = b.Path };
            Assert.Equal(SanlockClient.NoLeader, (await hostB.ReadResourceLeaderAsync(onB, default)).Code);
            Check(await hostA.InitResourceAsync(onA, default), "write the lease");
            Assert.Equal((0, vm), await hostB.ReadResourceLeaderAsync(onB, default));
            Assert.Equal(-227, (await hostB.ReadResourceLeaderAsync(onB with { Resource = "another-vm" }, default)).Code);

            holder = SanlockDaemon.Hold(hostA, onA, Path.Combine(root, "a.out"));
            await WaitAsync(async () => (await hostB.ReadHoldersAsync(onB, default)).ExclusiveOwner == 1, "host A to hold the lease, seen through B's export");
            using (var refused = SanlockDaemon.Hold(hostB, onB, Path.Combine(root, "b.out")))
            {
                await refused.WaitForExitAsync();
                Assert.NotEqual(0, refused.ExitCode);
                Assert.Contains("acquire done -2", await File.ReadAllTextAsync(Path.Combine(root, "b.out")), StringComparison.Ordinal);
            }

            Assert.False(holder.HasExited);
        }
        finally
        {
            if (holder is { HasExited: false })
            {
                holder.Kill();
            }

            holder?.Dispose();
            foreach (var daemon in daemons)
            {
                daemon.Kill();
                await daemon.WaitForExitAsync();
                daemon.Dispose();
            }

            await exports.StopAsync(a.Path, default);
            await exports.StopAsync(b.Path, default);
            Directory.Delete(root, recursive: true);
        }
    }

    private static SanlockClient Daemon(string root, int host, List<Process> daemons)
    {
        var (daemon, client) = SanlockDaemon.Start(Path.Combine(root, $"run{host.ToString(CultureInfo.InvariantCulture)}"), $"lease-it-host{host}");
        daemons.Add(daemon);
        return client;
    }

    private static void Check(SanlockResult result, string what) => Assert.True(result.Succeeded, $"sanlock could not {what}: {result.Output}");

    private static async Task WaitAsync(Func<Task<bool>> done, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!await done())
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"waited 15 s for {what}");
            await Task.Delay(100);
        }
    }
}
