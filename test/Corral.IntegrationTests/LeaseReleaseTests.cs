using System.Diagnostics;
using Corral.Agent.Hosting;
using Corral.Agent.Storage;
using Corral.Hypervisor;
using Corral.Leases.Sanlock;
using Corral.Model;
using Corral.PoolDatabase;
using Corral.Statefile;
using Corral.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>
/// An NFS SR's VM leases on a host with a real sanlock daemon (Debian's) and real exports of the lease volume
/// (qemu-storage-daemon over nfs-ganesha): the keeper's pass joins the lockspace of a plugged SR; once the SR is
/// unplugged, the lockspace is left and the export stopped, but not while a process of the host holds a lease in it
/// (sanlock would kill it); plugged again, it is joined again, and released at once by the unplug's own call.
/// </summary>
public sealed class LeaseReleaseTests(AgentFixture pool) : IClassFixture<AgentFixture>
{
    [Fact]
    public async Task An_unplugged_srs_lockspace_is_left_and_its_export_stopped_unless_a_lease_in_it_is_held_here()
    {
        await using var nfs = await NfsRig.StartAsync();
        var root = Directory.CreateTempSubdirectory("corral-lease-release-").FullName;
        var (daemon, sanlock) = SanlockDaemon.Start(Path.Combine(root, "run"), "lease-release-it");
        var options = Options.Create(new SanlockOptions
        {
            Enabled = true, RunDirectory = Path.Combine(root, "run"), IoTimeoutSeconds = 1, JoinTimeout = TimeSpan.FromSeconds(30),
            VolumeDirectory = Path.Combine(root, "exports"),
        });
        var services = pool.Services;
        var exports = new VolumeExports(NullLogger<VolumeExports>.Instance);
        var volumes = new LeaseVolumes(pool.Database, services.GetRequiredService<SrDrivers>(), exports, sanlock, pool.Host,
            services.GetRequiredService<HostLiveness>(), options, NullLogger<LeaseVolumes>.Instance);
        var leases = new VmLeases(pool.Database, pool.Host, services.GetRequiredService<HostLiveness>(), sanlock, volumes, options, NullLogger<VmLeases>.Instance);
        Process? holder = null;
        try
        {
            var (sr, srUuid, _) = await pool.CreateNfsSrAsync(nfs, "NFS lease release");
            var pbd = await pool.MyPbdAsync(sr);
            var path = volumes.ExportPath(srUuid);

            // The lockspace written once through this host's export (the agent's first host does so under a claim on
            // its liveness lease, which this fixture's host has not), then joined by the keeper's pass.
            var srRecord = await pool.Database.GetAsync(XenClasses.SR, sr, default);
            Assert.Equal(path, await volumes.ExportAsync(srRecord, default));
            Assert.True((await sanlock.InitLockspaceAsync(srUuid, path, default)).Succeeded);
            await leases.JoinPluggedAsync(default);
            Assert.Equal([srUuid], await JoinedAsync(sanlock));
            var qsd = ExportDaemon(path);
            Assert.True(Running(qsd));

            // A lease of the SR held by a process here, as a VM's QEMU holds its own: unplugged, the SR's lockspace and
            // export stay, and the holder lives.
            var lease = new VmLease(srUuid, Guid.NewGuid().ToString(), path, Offset: 2 * SanlockClient.AreaSize);
            Assert.True((await sanlock.InitResourceAsync(lease, default)).Succeeded);
            holder = SanlockDaemon.Hold(sanlock, lease, Path.Combine(root, "holder.out"));
            await WaitAsync(async () => (await sanlock.StatusAsync(default))!.Leases.Any(l => l.Lockspace == srUuid), "the process to hold its lease");
            await pool.S("PBD.unplug", pbd);
            await leases.JoinPluggedAsync(default);
            Assert.Equal([srUuid], await JoinedAsync(sanlock));
            Assert.False(holder.HasExited);
            Assert.True(Running(qsd));

            // The holder gone: the next pass leaves the lockspace and stops the export.
            holder.Kill();
            await holder.WaitForExitAsync();
            await WaitAsync(async () => !(await sanlock.StatusAsync(default))!.Leases.Any(l => l.Lockspace == srUuid), "sanlock to let the dead holder's lease go");
            await leases.JoinPluggedAsync(default);
            Assert.Empty(await JoinedAsync(sanlock));
            await WaitAsync(() => Task.FromResult(!Running(qsd)), "the export's qemu-storage-daemon to stop");
            Assert.False(File.Exists(path + ".pid"));
            Assert.Empty(volumes.Exported());

            // Plugged again and joined again; the unplug's own call releases it at once.
            await pool.S("PBD.plug", pbd);
            await leases.JoinPluggedAsync(default);
            Assert.Equal([srUuid], await JoinedAsync(sanlock));
            qsd = ExportDaemon(path);
            await pool.S("PBD.unplug", pbd);
            Assert.True(await leases.ReleaseAsync(srUuid, default));
            Assert.Empty(await JoinedAsync(sanlock));
            await WaitAsync(() => Task.FromResult(!Running(qsd)), "the export's qemu-storage-daemon to stop");
            await pool.S("SR.destroy", sr);
        }
        finally
        {
            if (holder is { HasExited: false })
            {
                holder.Kill();
            }

            holder?.Dispose();
            daemon.Kill();
            await daemon.WaitForExitAsync();
            daemon.Dispose();
            foreach (var uuid in volumes.Exported())
            {
                await volumes.StopExportAsync(uuid, default);
            }

            Directory.Delete(root, recursive: true);
        }
    }

    private static async Task<List<string>> JoinedAsync(SanlockClient sanlock) =>
        (await sanlock.StatusAsync(default) ?? throw new InvalidOperationException("sanlock does not answer")).Lockspaces.Select(l => l.Name).ToList();

    private static int ExportDaemon(string path) => int.Parse(File.ReadAllText(path + ".pid").Trim(), System.Globalization.CultureInfo.InvariantCulture);

    private static bool Running(int pid) => Directory.Exists($"/proc/{pid}") && !File.ReadAllText($"/proc/{pid}/stat").Contains(") Z ", StringComparison.Ordinal);

    private static async Task WaitAsync(Func<Task<bool>> done, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!await done())
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"waited 20 s for {what}");
            await Task.Delay(100);
        }
    }
}
