using System.Globalization;
using System.Text;
using Xunit;

namespace Corral.EndToEndTests;

/// <summary>
/// HA with its heartbeat on the shared lab's NFS SR, as a XenServer shop turns it on over its NAS: the statefile is a
/// file on the export holding every host's heartbeat slot, which each host reaches through its own qemu-storage-daemon
/// (the lab's hosts have no NFS client in their kernel). An agent killed, its fence daemon keeps the host's heartbeat
/// moving and the master finds the host isolated once its lease has expired; the export's daemon killed, it is made
/// again and the heartbeat moves on, with nothing fenced; a host's plug
/// pulled, its protected VM (on NFS) starts on a survivor. Then the pool is put back as it was: the host powered on,
/// HA off, every host's export stopped.
/// </summary>
[Collection(SharedLabCollection.Name)]
public sealed class NfsHaLabTests(SharedLab shared)
{
    private readonly LabSession _lab = shared.Lab;

    [Fact]
    public async Task Ha_on_the_nfs_sr_beats_through_each_hosts_export_and_restarts_a_protected_vm_whose_host_lost_power()
    {
        var nfs = await _lab.Xe("sr-list", "name-label=Shared storage", "--minimal");
        Assert.Equal("nfs", await _lab.Xe("sr-param-get", $"uuid={nfs}", "param-name=type"));
        var (vm, ip) = await shared.NewTestVmAsync("HA on NFS test VM", 28, on: 3, tools: false);
        var pool = await _lab.Xe("pool-list", "--minimal");
        try
        {
            // The plug pulled must take only this test's VM: any other on lab-host3 moves to lab-host2 first.
            var onHost3 = await _lab.Xe("vm-list", $"resident-on={await HostAsync(3)}", "power-state=running", "is-control-domain=false", "--minimal");
            foreach (var other in onHost3.Split(',', StringSplitOptions.RemoveEmptyEntries).Where(v => v != vm))
            {
                await _lab.Xe("vm-migrate", $"uuid={other}", "host=lab-host2", "live=true");
            }

            // The VM holds its lease in the SR's lease volume, through its host's export and sanlock daemon, in the slot
            // the SR's sm_config gives it.
            var srUuid = nfs;
            Assert.Contains(vm, await _lab.Xe("sr-param-get", $"uuid={nfs}", "param-name=sm-config", "param-key=corral-vm-lease-slots"), StringComparison.Ordinal);
            await HoldsLeaseAsync(3, srUuid, vm);
            Assert.Single(Directory.GetFiles(Path.Combine(_lab.LabDirectory, "storage", "nfs"), ".corral-vm-leases.raw", SearchOption.AllDirectories));

            await _lab.Xe("pool-ha-enable", $"heartbeat-sr-uuids={nfs}");
            await _lab.Xe("vm-param-set", $"uuid={vm}", "ha-restart-priority=restart");
            var hosts = new Dictionary<int, string>();
            for (var h = 1; h <= 3; h++)
            {
                hosts[h] = await _lab.Xe("host-list", $"name-label=lab-host{h}", "params=uuid", "--minimal");
            }

            // One file on the export, a 4 KiB slot per host in the order of their uuids, each moving.
            var statefile = Assert.Single(Directory.GetFiles(Path.Combine(_lab.LabDirectory, "storage", "nfs"), ".corral-ha-statefile.raw", SearchOption.AllDirectories));
            var order = hosts.Values.Order(StringComparer.Ordinal).ToList();
            foreach (var h in new[] { 1, 2, 3 })
            {
                await MovesAsync(statefile, order.IndexOf(hosts[h]), hosts[h], $"lab-host{h}'s heartbeat on the export");
            }

            // Host 3's agent killed: its fence daemon writes on through the host's export, so that once its lease has
            // expired the master finds it isolated, not dead: nothing is fenced, and its VM runs on in the same QEMU.
            var marks = _lab.AgentLogMarks();
            var qemu = File.ReadAllText(Path.Combine(_lab.RunDirectory, "host3", "vms", vm, "qemu.pid")).Trim();
            await _lab.LabAsync("kill-agent", "3");
            await LabSession.Eventually(async () => await _lab.Xe("host-list", "name-label=lab-host3", "params=host-metrics-live", "--minimal") == "false",
                TimeSpan.FromSeconds(30), "lab-host3's lease to expire after its agent died");
            await MovesAsync(statefile, order.IndexOf(hosts[3]), hosts[3], "lab-host3's heartbeat with its agent dead");
            await LabSession.Eventually(() => Task.FromResult(_lab.AgentLogsSince(marks).Contains("HA: host lab-host3 has no lease but its storage heartbeat moves", StringComparison.Ordinal)),
                TimeSpan.FromSeconds(15), "the master to find lab-host3 isolated");
            await _lab.LabAsync("start-agent", "3");
            await AllLiveAsync("lab-host3's agent back");
            Assert.Equal(qemu, File.ReadAllText(Path.Combine(_lab.RunDirectory, "host3", "vms", vm, "qemu.pid")).Trim());
            Assert.DoesNotContain("power-fenced", _lab.AgentLogsSince(marks), StringComparison.Ordinal);

            // Host 2's export killed (its qemu-storage-daemon, SIGKILL): exported again, its heartbeat moves on, and no
            // host is fenced: every one stays live and the VM runs on, in the same QEMU.
            var daemon = Assert.Single(Directory.GetFiles(Path.Combine(_lab.RunDirectory, "host2", "ha"), "*.statefile.pid"));
            Assert.Equal(0, (await _lab.RunAsync("kill", "-9", File.ReadAllText(daemon).Trim())).Code);
            await Task.Delay(TimeSpan.FromSeconds(3));
            await MovesAsync(statefile, order.IndexOf(hosts[2]), hosts[2], "lab-host2's heartbeat through its export made again");
            Assert.Equal("true,true,true", await _lab.Xe("host-list", "params=host-metrics-live", "--minimal"));
            Assert.Equal(qemu, File.ReadAllText(Path.Combine(_lab.RunDirectory, "host3", "vms", vm, "qemu.pid")).Trim());

            // Host 3's plug pulled: its protected VM, whose disk is on NFS, starts on a survivor by itself.
            await _lab.LabAsync("pull-plug", "3");
            await LabSession.Eventually(async () => _lab.RunningCopies(vm) is [var survivor] && survivor != 3 && await LabSession.Ping(ip),
                TimeSpan.FromSeconds(90), "the protected VM to answer from a survivor");
            Assert.Equal("false", await _lab.Xe("host-list", "name-label=lab-host3", "params=host-metrics-live", "--minimal"));
            Assert.Equal("running", await _lab.Xe("vm-param-get", $"uuid={vm}", "param-name=power-state"));
            // Its lease, held by the dead host, taken over on the survivor (the pool's proof that the host is gone).
            await HoldsLeaseAsync(Assert.Single(_lab.RunningCopies(vm)), srUuid, vm);
        }
        finally
        {
            if (File.ReadAllText(Path.Combine(_lab.RunDirectory, "host3", "power")).Trim() == "off")
            {
                await _lab.LabAsync("power-on", "3");
            }

            await AllLiveAsync("lab-host3 back in the pool");
            if (await _lab.Xe("pool-param-get", $"uuid={pool}", "param-name=ha-enabled") == "true")
            {
                await _lab.Xe("pool-ha-disable");
            }

            await shared.RemoveAsync(vm);
        }

        // HA off: no host exports the statefile any more.
        await LabSession.Eventually(() => Task.FromResult(Enumerable.Range(1, 3).All(h =>
                !Directory.Exists(Path.Combine(_lab.RunDirectory, $"host{h}", "ha"))
                || Directory.GetFiles(Path.Combine(_lab.RunDirectory, $"host{h}", "ha"), "*.pid").Length == 0)),
            TimeSpan.FromSeconds(30), "every host's statefile export to stop");
    }

    /// <summary>The host's sanlock daemon holds the VM's lease in the SR's lease volume as exported on that host, for the VM's QEMU.</summary>
    private async Task HoldsLeaseAsync(int host, string srUuid, string vm)
    {
        var volume = Path.Combine(_lab.RunDirectory, $"host{host}", "leases", srUuid + ".leases");
        var qemu = File.ReadAllText(Path.Combine(_lab.RunDirectory, $"host{host}", "vms", vm, "qemu.pid")).Trim();
        var (code, status) = await _lab.RunAsync("env", $"SANLOCK_RUN_DIR={Path.Combine(_lab.RunDirectory, $"host{host}", "sanlock")}", "sanlock", "client", "status");
        Assert.True(code == 0, status);
        Assert.Contains($"s {srUuid}:", status, StringComparison.Ordinal);
        Assert.Matches($@"(?m)^r {srUuid}:{vm}:{System.Text.RegularExpressions.Regex.Escape(volume)}:[1-9][0-9]*:[0-9]+ p {qemu}$", status);
    }

    private async Task<string> HostAsync(int host) => await _lab.Xe("host-list", $"name-label=lab-host{host}", "--minimal");

    private async Task AllLiveAsync(string what) =>
        await LabSession.Eventually(async () => (await _lab.TryXe("host-list", "params=host-metrics-live", "--minimal")).Output == "true,true,true",
            TimeSpan.FromSeconds(90), what);

    /// <summary>Waits for the host's slot of the statefile, read from the export's file, to hold a counter that moves.</summary>
    private static async Task MovesAsync(string statefile, int slot, string hostUuid, string what)
    {
        var first = Counter(statefile, slot, hostUuid);
        await LabSession.Eventually(() => Task.FromResult(Counter(statefile, slot, hostUuid) is { } now && (first is null || now > first)),
            TimeSpan.FromSeconds(15), what);
    }

    private static long? Counter(string statefile, int slot, string hostUuid)
    {
        var block = new byte[4096];
        using (var file = new FileStream(statefile, FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
        {
            file.Position = slot * 4096L;
            file.ReadExactly(block);
        }

        var line = Encoding.ASCII.GetString(block).Split('\n')[0].Split(' ');
        return line is ["corral-heartbeat", var uuid, var counter, _] && uuid == hostUuid ? long.Parse(counter, CultureInfo.InvariantCulture) : null;
    }
}
