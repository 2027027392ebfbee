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
    private static Dictionary<string, object?> Map(params (string Key, string Value)[] pairs) => pairs.ToDictionary(p => p.Key, p => (object?)p.Value);

    [Fact]
    public async Task An_nfs_srs_vm_leases_are_one_file_on_the_export_that_two_hosts_lock_through_their_own_exports()
    {
        await using var nfs = await NfsRig.StartAsync();
        var sr = (string)(await pool.S("SR.create", pool.Host.Ref, Map(("server", NfsRig.Server), ("serverpath", nfs.Export)), 0L, "NFS leases", "", "nfs", "", true, Map()))!;
        var (srUuid, location) = await LocationAsync(sr);
        var volume = await MadeOnceAsync("nfs", location, srUuid);
        var onServer = Path.Combine(nfs.ExportDirectory, srUuid, ".corral-vm-leases.raw");
        Assert.Equal(SharedVolume.VmLeases.Size, new FileInfo(onServer).Length);
        await LockedFromTwoHostsAsync(srUuid, volume);

        await pool.S("SR.scan", sr);
        Assert.Empty((List<object?>)(await pool.S("SR.get_VDIs", sr))!);
        await pool.S("PBD.unplug", await MyPbdAsync(sr));
        await pool.S("SR.destroy", sr);
        Assert.False(File.Exists(onServer));
    }

    [Fact]
    public async Task An_iscsi_srs_vm_leases_are_one_extent_of_the_lun_that_two_hosts_lock_through_their_own_exports()
    {
        // A LUN with room for the 256 MiB lease volume (sparse: only what is written takes space).
        await using var tgt = await TgtRig.StartAsync(lunSize: 1L << 30);
        var config = Map(("target", TgtRig.Address), ("port", "3260"), ("targetIQN", TgtRig.Iqn), ("SCSIid", TgtRig.ScsiId));
        var sr = (string)(await pool.S("SR.create", pool.Host.Ref, config, 0L, "iSCSI leases", "", "lvmoiscsi", "user", true, Map()))!;
        var (srUuid, location) = await LocationAsync(sr);
        var volume = await MadeOnceAsync("lvmoiscsi", location, srUuid);
        var extents = ((Dictionary<string, object?>)(await pool.S("SR.get_sm_config", sr))!)["corral-extents"] as string;
        var extent = System.Text.Json.JsonSerializer.Deserialize<Dictionary<string, string>>(extents!)!["vm-leases"].Split('+');
        Assert.Equal(SharedVolume.VmLeases.Size, long.Parse(extent[1], CultureInfo.InvariantCulture));
        await LockedFromTwoHostsAsync(srUuid, volume);

        // Not a VDI: a scan leaves it out, and the SR counts as empty.
        await pool.S("SR.scan", sr);
        Assert.Empty((List<object?>)(await pool.S("SR.get_VDIs", sr))!);
        await pool.S("PBD.unplug", await MyPbdAsync(sr));
        await pool.S("SR.destroy", sr);
    }

    private async Task<(string Blockdev, string? Password)> MadeOnceAsync(string type, string location, string srUuid)
    {
        var driver = (ISharedVolumes)pool.Services.GetRequiredService<SrDrivers>().Get(type);
        var made = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => driver.VolumeAsync(location, srUuid, SharedVolume.VmLeases, "leases", default)));
        Assert.Single(made.Distinct());
        return made[0];
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

            holder = Leased(hostA, onA, root, "a");
            await WaitAsync(async () => (await hostB.ReadHoldersAsync(onB, default)).ExclusiveOwner == 1, "host A to hold the lease, seen through B's export");
            using (var refused = Leased(hostB, onB, root, "b"))
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

    /// <summary>A host's sanlock daemon (Debian's), with a run directory of its own, its client with a 1 s I/O timeout.</summary>
    private static SanlockClient Daemon(string root, int host, List<Process> daemons)
    {
        var run = Path.Combine(root, $"run{host.ToString(CultureInfo.InvariantCulture)}");
        Directory.CreateDirectory(run);
        var info = new ProcessStartInfo("sanlock") { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var argument in new[] { "daemon", "-D", "-w", "0", "-U", "root", "-G", "root", "-e", $"lease-it-host{host.ToString(CultureInfo.InvariantCulture)}" })
        {
            info.ArgumentList.Add(argument);
        }

        info.Environment["SANLOCK_RUN_DIR"] = run;
        info.Environment["SANLOCK_PRIVILEGED"] = "0";
        var daemon = Process.Start(info) ?? throw new InvalidOperationException("could not start sanlock");
        daemon.OutputDataReceived += (_, _) => { };
        daemon.ErrorDataReceived += (_, _) => { };
        daemon.BeginOutputReadLine();
        daemon.BeginErrorReadLine();
        daemons.Add(daemon);
        for (var i = 0; i < 100 && !File.Exists(Path.Combine(run, "sanlock.sock")); i++)
        {
            Thread.Sleep(50);
        }

        return new SanlockClient(Options.Create(new SanlockOptions { Enabled = true, RunDirectory = run, IoTimeoutSeconds = 1, JoinTimeout = TimeSpan.FromSeconds(30) }));
    }

    /// <summary>A process that holds <paramref name="lease"/> as a VM's QEMU would (<c>sanlock client command</c>), what it printed in <c>&lt;name&gt;.out</c>.</summary>
    private static Process Leased(SanlockClient client, VmLease lease, string root, string name)
    {
        var command = new SanlockLeaseLauncher(client).Wrap(lease, "/bin/sh", ["-c", "sleep 60"]);
        var info = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add($"exec \"$0\" \"$@\" > {Path.Combine(root, name + ".out")} 2>&1");
        info.ArgumentList.Add(command.Program);
        foreach (var argument in command.Arguments)
        {
            info.ArgumentList.Add(argument);
        }

        foreach (var (key, value) in command.Environment)
        {
            info.Environment[key] = value;
        }

        return Process.Start(info) ?? throw new InvalidOperationException("could not start sanlock client command");
    }

    private static void Check(SanlockResult result, string what) => Assert.True(result.Succeeded, $"sanlock could not {what}: {result.Output}");

    private async Task<(string SrUuid, string Location)> LocationAsync(string sr)
    {
        var srUuid = (string)(await pool.S("SR.get_uuid", sr))!;
        var config = ((Dictionary<string, object?>)(await pool.S("PBD.get_device_config", await MyPbdAsync(sr)))!)
            .ToDictionary(kv => kv.Key, kv => (string)kv.Value!);
        return (srUuid, SrLocation.Of(config, srUuid)!);
    }

    private async Task<string> MyPbdAsync(string sr)
    {
        foreach (var pbd in ((List<object?>)(await pool.S("SR.get_PBDs", sr))!).Cast<string>())
        {
            if ((string)(await pool.S("PBD.get_host", pbd))! == pool.Host.Ref)
            {
                return pbd;
            }
        }

        throw new InvalidOperationException("no PBD on this host");
    }

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
