using System.Diagnostics;
using System.Globalization;
using Xunit;

namespace Corral.EndToEndTests;

/// <summary>
/// The seed's graceful test and its failure cases, in the shared lab (whose shared SR is on its storage server's NFS
/// export): with <c>ping -i 0.1</c> running against two VMs of its own they live-migrate off their host (no ping lost, no
/// reboot, the guest's disk write sequence without a gap); a second migration of a VM already migrating is refused;
/// killing the destination's agent mid-migration leaves the VM on the source, and killing the source's agent
/// mid-migration leaves it running on exactly one host; maintenance mode (disable and evacuate) empties a host without
/// losing a ping, and says which VMs cannot leave and why.
/// </summary>
[Collection(SharedLabCollection.Name)]
public sealed class MigrationLabTests(SharedLab shared)
{
    private readonly LabSession _lab = shared.Lab;

    [Fact]
    public async Task Vms_move_live_without_losing_a_ping_and_a_failed_migration_leaves_one_copy()
    {
        // The guest with tools writes a numbered line to its disk every 100 ms from boot on.
        var (tools, toolsIp) = await shared.NewTestVmAsync("migration test VM", 26, on: 1, tools: true, "xenstore-data:vm-data/seqwrite=1");
        var (noTools, noToolsIp) = await shared.NewTestVmAsync("migration test VM (no tools)", 27, on: 1, tools: false);
        try
        {
            await MigrateAndFailAsync(tools, toolsIp, noTools, noToolsIp);
            await MaintenanceModeAsync(tools, toolsIp, noTools, noToolsIp);

            // The disk: the guest's write sequence has no gap and no repeat, and the image is consistent.
            await _lab.Xe("vm-shutdown", $"uuid={tools}");
            var vdi = await _lab.Xe("vbd-list", $"vm-uuid={tools}", "type=Disk", "params=vdi-uuid", "--minimal");
            await _lab.AssertWriteSequenceIntactAsync(_lab.VdiFile(vdi));
        }
        finally
        {
            // The shared lab as it was, whatever failed: every host enabled, these VMs gone.
            foreach (var host in (await _lab.TryXe("host-list", "params=uuid", "--minimal")).Output.Split(','))
            {
                await _lab.TryXe("host-enable", $"uuid={host}");
            }

            await shared.RemoveAsync(tools);
            await shared.RemoveAsync(noTools);
        }
    }

    private async Task MigrateAndFailAsync(string tools, string toolsIp, string noTools, string noToolsIp)
    {
        await LabSession.Eventually(async () => long.TryParse(await UptimeAsync(tools), out _), TimeSpan.FromSeconds(30), "a guest agent report");
        var startTimes = (await StartTimeAsync(tools), await StartTimeAsync(noTools));
        var uptimeBefore = long.Parse(await UptimeAsync(tools), CultureInfo.InvariantCulture);

        // The graceful test: both VMs leave lab-host1 while pinged every 100 ms.
        using (var pingTools = Pinger.Start(toolsIp))
        using (var pingNoTools = Pinger.Start(noToolsIp))
        {
            await Task.Delay(1000);
            await _lab.Xe("vm-migrate", $"uuid={tools}", "host=lab-host2", "live=true");
            await _lab.Xe("vm-migrate", $"uuid={noTools}", "host=lab-host3", "live=true");
            await Task.Delay(1500);
            Assert.Equal(0, await pingTools.StopAsync());
            Assert.Equal(0, await pingNoTools.StopAsync());
        }

        Assert.Equal(await HostAsync("lab-host2"), await _lab.Xe("vm-param-get", $"uuid={tools}", "param-name=resident-on"));
        Assert.Equal(await HostAsync("lab-host3"), await _lab.Xe("vm-param-get", $"uuid={noTools}", "param-name=resident-on"));
        Assert.Equal(startTimes, (await StartTimeAsync(tools), await StartTimeAsync(noTools)));
        // Both memory streams took TLS with the pool's certificates: each destination's QEMU was started to take the
        // source host's certificate alone (its subject as the pool CA issued it: CN=<member name>).
        foreach (var (vm, host) in new[] { (tools, 2), (noTools, 3) })
        {
            var args = _lab.QemuArguments(host, vm);
            Assert.Contains("migration.tls-creds=corral-tls-server", args);
            Assert.Contains("authz-simple,id=corral-tls-peer,identity=CN=lab-host1", args);
        }

        // The virtualization state, as xe shows it for XenServer's VMs: the guest agent's report moved with its VM;
        // the VM without tools has no guest metrics at all ("tools not installed"), and neither needed them to move.
        Assert.Equal("true", await _lab.Xe("vm-param-get", $"uuid={tools}", "param-name=PV-drivers-detected"));
        Assert.StartsWith(await QemuGuestAgentVersionAsync(), await _lab.Xe("vm-param-get", $"uuid={tools}", "param-name=PV-drivers-version"), StringComparison.Ordinal);
        Assert.Equal("<not in database>", await _lab.Xe("vm-param-get", $"uuid={noTools}", "param-name=PV-drivers-detected"));
        Assert.Equal("<not in database>", await _lab.Xe("vm-param-get", $"uuid={noTools}", "param-name=os-version"));
        // No reboot: the uptime the new host records goes on from the old one's. Hosts record the guest's report when
        // something but the uptime changed, or once a minute, so the new host's first record can take that long.
        await LabSession.Eventually(async () => long.Parse(await UptimeAsync(tools), CultureInfo.InvariantCulture) != uptimeBefore,
            TimeSpan.FromSeconds(75), "the new host to record the guest's uptime");
        Assert.True(long.Parse(await UptimeAsync(tools), CultureInfo.InvariantCulture) > uptimeBefore, "the guest's uptime went back: it rebooted");

        // One migration of a VM at a time: a second, while a slow one runs, is refused.
        var slow = _lab.TryXe("vm-migrate", $"uuid={noTools}", "host=lab-host1", "bandwidth=40000000");
        await Task.Delay(1500);
        var (second, why) = await _lab.TryXe("vm-migrate", $"uuid={noTools}", "host=lab-host2");
        Assert.NotEqual(0, second);
        // xe prints OTHER_OPERATION_IN_PROGRESS as xapi documents it.
        Assert.Contains("Another operation involving the object is currently in progress", why, StringComparison.Ordinal);
        Assert.Equal(0, (await slow).Code);
        Assert.Equal(await HostAsync("lab-host1"), await _lab.Xe("vm-param-get", $"uuid={noTools}", "param-name=resident-on"));

        // The destination's agent dies mid-migration (lab-host3; lab-host1, the master, serves xe): the VM stays on
        // the source, and no copy is left behind once the agent is back.
        var failing = _lab.TryXe("vm-migrate", $"uuid={tools}", "host=lab-host3", "bandwidth=20000000");
        await Task.Delay(1500);
        await KillAgentAsync(3);
        var (failed, failure) = await failing;
        Assert.NotEqual(0, failed);
        // VM_MIGRATE_FAILED, as xe prints it.
        Assert.Contains("An error occurred during the migration process.", failure, StringComparison.Ordinal);
        Assert.Equal(await HostAsync("lab-host2"), await _lab.Xe("vm-param-get", $"uuid={tools}", "param-name=resident-on"));
        Assert.True(await LabSession.Ping(toolsIp));
        await _lab.LabAsync("power-on", "3");
        await LabSession.Eventually(() => Task.FromResult(_lab.RunningCopies(tools).SequenceEqual([2])), TimeSpan.FromSeconds(60), "the destination's copy to be gone");
        await LabSession.Eventually(async () => await _lab.Xe("host-list", "params=host-metrics-live", "--minimal") == "true,true,true",
            TimeSpan.FromSeconds(60), "lab-host3 back");

        // The source's agent dies mid-migration: exactly one copy runs afterwards, where the pool database says.
        var orphaned = _lab.TryXe("vm-migrate", $"uuid={tools}", "host=lab-host3", "bandwidth=20000000");
        await Task.Delay(1500);
        await KillAgentAsync(2);
        await Task.Delay(1000);
        await _lab.LabAsync("power-on", "2");
        await orphaned;
        await LabSession.Eventually(async () =>
        {
            var copies = _lab.RunningCopies(tools);
            if (copies.Count != 1)
            {
                return false;
            }

            return await _lab.Xe("vm-param-get", $"uuid={tools}", "param-name=resident-on") == await HostAsync($"lab-host{copies[0]}")
                && await _lab.Xe("vm-param-get", $"uuid={tools}", "param-name=power-state") == "running";
        }, TimeSpan.FromSeconds(90), "exactly one running copy, where the pool database places it");
        await LabSession.Eventually(() => LabSession.Ping(toolsIp), TimeSpan.FromSeconds(30), "the VM to answer ping after both faults");
    }

    private async Task MaintenanceModeAsync(string tools, string toolsIp, string noTools, string noToolsIp)
    {
        // Maintenance mode: both VMs on lab-host1, pinged; the host is disabled and evacuated, and nothing is lost.
        foreach (var vm in new[] { tools, noTools })
        {
            if (await _lab.Xe("vm-param-get", $"uuid={vm}", "param-name=resident-on") != await HostAsync("lab-host1"))
            {
                await _lab.Xe("vm-migrate", $"uuid={vm}", "host=lab-host1");
            }
        }

        var host1 = await HostAsync("lab-host1");
        Assert.Equal("", await _lab.Xe("host-get-vms-which-prevent-evacuation", $"uuid={host1}"));
        var residents = (await _lab.Xe("vm-list", $"resident-on={host1}", "is-control-domain=false", "--minimal")).Split(',', StringSplitOptions.RemoveEmptyEntries).Length;
        using (var pingTools = Pinger.Start(toolsIp))
        using (var pingNoTools = Pinger.Start(noToolsIp))
        {
            await Task.Delay(500);
            await _lab.Xe("host-disable", $"uuid={host1}");
            await _lab.Xe("host-evacuate", $"uuid={host1}");
            await Task.Delay(1500);
            Assert.Equal(0, await pingTools.StopAsync());
            Assert.Equal(0, await pingNoTools.StopAsync());
        }

        foreach (var vm in new[] { tools, noTools })
        {
            Assert.NotEqual(host1, await _lab.Xe("vm-param-get", $"uuid={vm}", "param-name=resident-on"));
        }

        // Leaving maintenance mode, the VMs it moved come back (as XenCenter offers), live again.
        var noted = await _lab.Xe("host-param-get", $"uuid={host1}", "param-name=other-config", "param-key=MAINTENANCE_MODE_EVACUATED_VMS_MIGRATED");
        // Every VM that ran there is in the note: these two, and the shared lab's own test VMs.
        Assert.Equal(residents, noted.Split(',').Length);
        using (var pingTools = Pinger.Start(toolsIp))
        using (var pingNoTools = Pinger.Start(noToolsIp))
        {
            await Task.Delay(500);
            await _lab.Xe("host-enable", $"uuid={host1}", "restore-vms=true");
            await Task.Delay(1500);
            Assert.Equal(0, await pingTools.StopAsync());
            Assert.Equal(0, await pingNoTools.StopAsync());
        }

        foreach (var vm in new[] { tools, noTools })
        {
            Assert.Equal(host1, await _lab.Xe("vm-param-get", $"uuid={vm}", "param-name=resident-on"));
        }

        Assert.NotEqual(0, (await _lab.TryXe("host-param-get", $"uuid={host1}", "param-name=other-config", "param-key=MAINTENANCE_MODE_EVACUATED_VMS_MIGRATED")).Code);
        await _lab.Xe("host-disable", $"uuid={host1}");
        await _lab.Xe("host-evacuate", $"uuid={host1}");

        // With every other host disabled, the VMs of a host have nowhere to go, and it says so per VM.
        var toolsHost = await _lab.Xe("vm-param-get", $"uuid={tools}", "param-name=resident-on");
        foreach (var other in (await _lab.Xe("host-list", "params=uuid", "--minimal")).Split(',').Where(h => h != toolsHost && h != host1))
        {
            await _lab.Xe("host-disable", $"uuid={other}");
        }

        var blocked = await _lab.Xe("host-get-vms-which-prevent-evacuation", $"uuid={toolsHost}");
        Assert.Contains($"{tools} NO_HOSTS_AVAILABLE", blocked, StringComparison.Ordinal);
        var (refused, _) = await _lab.TryXe("host-evacuate", $"uuid={toolsHost}");
        Assert.NotEqual(0, refused);
        foreach (var host in (await _lab.Xe("host-list", "params=uuid", "--minimal")).Split(','))
        {
            await _lab.Xe("host-enable", $"uuid={host}");
        }
    }

    private Task<string> HostAsync(string name) => _lab.Xe("host-list", $"name-label={name}", "--minimal");

    private Task<string> StartTimeAsync(string vm) => _lab.Xe("vm-param-get", $"uuid={vm}", "param-name=start-time");

    /// <summary>The QEMU guest agent's version as xe shows it for the guest tools (the test image carries this machine's qemu-ga).</summary>
    private static async Task<string> QemuGuestAgentVersionAsync()
    {
        using var qga = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("qemu-ga", "-V") { RedirectStandardOutput = true })!;
        var match = System.Text.RegularExpressions.Regex.Match(await qga.StandardOutput.ReadToEndAsync(), @"QEMU Guest Agent (\d+)\.(\d+)\.(\d+)");
        Assert.True(match.Success, "qemu-ga -V names its version");
        return $"major: {match.Groups[1].Value}; minor: {match.Groups[2].Value}; micro: {match.Groups[3].Value};";
    }

    private async Task<string> UptimeAsync(string vm) =>
        (await _lab.TryXe("vm-param-get", $"uuid={vm}", "param-name=other", "param-key=uptime")).Output;

    private async Task KillAgentAsync(int host)
    {
        var pidFile = Path.Combine(_lab.LabDirectory, "..", "run", $"agent-host{host}.pid");
        var pid = int.Parse((await File.ReadAllTextAsync(pidFile)).Trim(), CultureInfo.InvariantCulture);
        using var process = Process.GetProcessById(pid);
        process.Kill();
        await process.WaitForExitAsync();
    }
}
