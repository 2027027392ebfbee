using Xunit;

namespace Corral.EndToEndTests;

/// <summary>
/// The seed's clumsy test with HA on, as a new user would try it: both VMs protected on the master, pinged; the plug
/// is pulled on the master and nobody types a command. A survivor becomes master, both VMs answer ping again from
/// survivors, exactly one copy of each runs, the dead host shows host-metrics-live false, the guest's on-disk write
/// sequence has no gap and its image is clean, and no task is left pending. Then a host frozen whole is power-fenced
/// before its VM starts elsewhere, and runs no stale copy when it thaws; a partitioned host without a fence agent is
/// isolated, not dead (its storage heartbeat lands): its VM runs on in the same QEMU process, nothing starts elsewhere
/// (watched every 50 ms), and it rejoins with the VM as it was; its agent killed, the host is neither power-fenced nor
/// its VM restarted (its fence daemon keeps the heartbeat), and the agent started again finds the VM as it was; its
/// fence daemon killed, its watchdog resets it and HA restarts the VM elsewhere, one copy at a time throughout. Also
/// the configuration's refusals.
/// </summary>
[Collection(FaultLabCollection.Name)]
public sealed class HaLabTests(FaultLab ha)
{
    private const string Tools = FaultLab.Tools;
    private const string NoTools = FaultLab.NoTools;
    private readonly LabSession _lab = ha.Lab;

    [Fact]
    public async Task Protected_vms_come_back_on_survivors_by_themselves_when_the_master_loses_power()
    {
        await ha.ResetAsync();
        var tools = await _lab.Xe("vm-list", $"name-label={Tools}", "--minimal");
        var noTools = await _lab.Xe("vm-list", $"name-label={NoTools}", "--minimal");
        var toolsIp = (await _lab.Xe("vm-param-get", $"uuid={tools}", "param-name=xenstore-data", "param-key=vm-data/ip")).Split('/')[0];
        var noToolsIp = (await _lab.Xe("vm-param-get", $"uuid={noTools}", "param-name=xenstore-data", "param-key=vm-data/ip")).Split('/')[0];
        var pool = await _lab.Xe("pool-list", "--minimal");
        var master = await _lab.Xe("pool-list", "params=master", "--minimal");
        var shared = await _lab.Xe("sr-list", "name-label=Shared storage", "--minimal");

        // Configuration, with XenServer's names and refusals.
        var local = await _lab.Xe("sr-list", "name-label=Local storage", "host=lab-host1", "--minimal");
        var (notShared, notSharedWhy) = await _lab.TryXe("pool-ha-enable", $"heartbeat-sr-uuids={local}");
        Assert.NotEqual(0, notShared);
        Assert.Contains("the referenced SR is not properly shared", notSharedWhy, StringComparison.Ordinal);
        await _lab.Xe("pool-ha-enable", $"heartbeat-sr-uuids={shared}");
        Assert.Equal("true", await _lab.Xe("pool-param-get", $"uuid={pool}", "param-name=ha-enabled"));
        var (again, againWhy) = await _lab.TryXe("pool-ha-enable", $"heartbeat-sr-uuids={shared}");
        Assert.NotEqual(0, again);
        Assert.Contains("HA is enabled", againWhy, StringComparison.Ordinal);
        Assert.NotEqual(0, (await _lab.TryXe("vm-param-set", $"uuid={tools}", "ha-restart-priority=always")).Code);
        foreach (var vm in new[] { tools, noTools })
        {
            await _lab.Xe("vm-param-set", $"uuid={vm}", "ha-restart-priority=restart");
        }

        await _lab.Xe("vm-param-set", $"uuid={noTools}", "order=1");
        // Two small VMs, three hosts: they survive the loss of any two.
        Assert.Equal("2", await _lab.Xe("pool-ha-compute-max-host-failures-to-tolerate"));
        Assert.Equal("2", await _lab.Xe("pool-ha-compute-hypothetical-max-host-failures-to-tolerate", $"vm-uuid={tools}", "restart-priority=restart"));
        await _lab.Xe("pool-param-set", $"uuid={pool}", "ha-host-failures-to-tolerate=1");
        // As xapi: the plan is for what the pool is to tolerate, not more.
        await LabSession.Eventually(async () => await _lab.Xe("pool-param-get", $"uuid={pool}", "param-name=ha-plan-exists-for") == "1",
            TimeSpan.FromSeconds(15), "the plan to be computed");

        // The guest writes its sequence to disk from boot on, so a crash's damage would show.
        await _lab.Xe("vm-param-set", $"uuid={tools}", "xenstore-data:vm-data/seqwrite=1");
        await _lab.Xe("vm-start", $"uuid={tools}", "on=lab-host1");
        await LabSession.Eventually(() => LabSession.Ping(toolsIp), TimeSpan.FromSeconds(60), "the test VM after its restart");
        await Task.Delay(2000);

        // The plug is pulled on the master with both VMs; no command is typed afterwards until they answer again.
        await _lab.LabAsync("pull-plug", "1");
        await LabSession.Eventually(() => LabSession.Ping(toolsIp), TimeSpan.FromSeconds(90), "the test VM to answer from a survivor");
        await LabSession.Eventually(() => LabSession.Ping(noToolsIp), TimeSpan.FromSeconds(90), "the VM without tools to answer from a survivor");

        // xe as configured (~/.xe names lab-host1, now dead) finds the new master through the pool's other hosts.
        var (code, asConfigured) = await _lab.TryXe("host-list", "name-label=lab-host1", "params=host-metrics-live", "--minimal");
        Assert.True(code == 0, asConfigured);
        Assert.StartsWith("false\n", asConfigured, StringComparison.Ordinal);
        Assert.Contains($"Note: {_lab.Addresses[0]} does not answer; the command went to the pool master at", asConfigured, StringComparison.Ordinal);

        var survivor = new[] { "-s", _lab.Addresses[1] };
        Assert.NotEqual(master, await _lab.Xe([.. survivor, "pool-list", "params=master", "--minimal"]));
        Assert.Equal("false", await _lab.Xe([.. survivor, "host-list", "name-label=lab-host1", "params=host-metrics-live", "--minimal"]));
        foreach (var vm in new[] { tools, noTools })
        {
            var copies = _lab.RunningCopies(vm);
            Assert.Single(copies);
            Assert.NotEqual(1, copies[0]);
            Assert.Equal(await _lab.Xe([.. survivor, "host-list", $"name-label=lab-host{copies[0]}", "--minimal"]),
                await _lab.Xe([.. survivor, "vm-param-get", $"uuid={vm}", "param-name=resident-on"]));
        }

        Assert.Equal("", await _lab.Xe([.. survivor, "task-list", "status=pending", "--minimal"]));

        // A host frozen whole — agent, etcd member and QEMUs stopped, as a hung machine — with the test VM on it: the
        // master power-fences it (the lab's switch, as IPMI would) before the VM starts elsewhere, so when it thaws there
        // is nothing left to run a stale copy.
        await _lab.LabAsync("power-on", "1");
        await LabSession.Eventually(async () => (await _lab.TryXe([.. survivor, "host-list", "params=host-metrics-live", "--minimal"])).Output == "true,true,true",
            TimeSpan.FromSeconds(90), "lab-host1 back in the pool");
        var frozen = Assert.Single(_lab.RunningCopies(tools));
        await _lab.LabAsync("freeze", frozen.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await LabSession.Eventually(async () => _lab.RunningCopies(tools) is [var other] && other != frozen && await LabSession.Ping(toolsIp),
            TimeSpan.FromSeconds(90), "the test VM to answer from another host");
        await _lab.LabAsync("thaw", frozen.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await Task.Delay(1000);
        Assert.NotEqual(frozen, Assert.Single(_lab.RunningCopies(tools)));
        survivor = ["-s", _lab.Addresses[frozen == 2 ? 2 : 1]];
        Assert.Equal("false", await _lab.Xe([.. survivor, "host-list", $"name-label=lab-host{frozen}", "params=host-metrics-live", "--minimal"]));

        // A partitioned host with no fence agent is isolated, not dead: its storage heartbeat lands, so it keeps its VM
        // (the same QEMU process) well past its lease's expiry, and the master starts no copy elsewhere. The process
        // table and the disk image's holders are watched every 50 ms throughout. Healed, it rejoins as it was.
        await _lab.LabAsync("power-on", frozen.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await LabSession.Eventually(async () => (await _lab.TryXe([.. survivor, "host-list", "params=host-metrics-live", "--minimal"])).Output == "true,true,true",
            TimeSpan.FromSeconds(90), $"lab-host{frozen} back in the pool");
        var cut = Assert.Single(_lab.RunningCopies(tools));
        survivor = ["-s", _lab.Addresses[cut == 1 ? 1 : 0]];
        await _lab.Xe([.. survivor, "host-set-power-on-mode", $"host=lab-host{cut}", "power-on-mode="]);
        var vdi = await _lab.Xe([.. survivor, "vbd-list", $"vm-uuid={tools}", "type=Disk", "params=vdi-uuid", "--minimal"]);
        var image = Path.Combine(_lab.LabDirectory, "shared", vdi + ".qcow2");
        await LabSession.Eventually(() => Task.FromResult(LabSession.DiskHolders(image).Count == 1), TimeSpan.FromSeconds(30), "one process holding the disk");
        var qemuBefore = Assert.Single(LabSession.DiskHolders(image));
        var mostCopies = 0;
        var mostHolders = 0;
        using var watching = new CancellationTokenSource();
        var watcher = Task.Run(async () =>
        {
            while (!watching.IsCancellationRequested)
            {
                mostCopies = Math.Max(mostCopies, _lab.RunningCopies(tools).Count);
                mostHolders = Math.Max(mostHolders, LabSession.DiskHolders(image).Count);
                await Task.Delay(50);
            }
        });
        await _lab.LabAsync("partition", cut.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await LabSession.Eventually(async () => (await _lab.TryXe([.. survivor, "host-list", $"name-label=lab-host{cut}", "params=host-metrics-live", "--minimal"])).Output == "false",
            TimeSpan.FromSeconds(30), $"lab-host{cut}'s lease to expire");
        // Past the lease's expiry by more than the master's whole wait for a dead host.
        await Task.Delay(TimeSpan.FromSeconds(12));
        Assert.Equal([cut], _lab.RunningCopies(tools));
        await _lab.LabAsync("heal", cut.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await LabSession.Eventually(async () => (await _lab.TryXe([.. survivor, "host-list", "params=host-metrics-live", "--minimal"])).Output == "true,true,true",
            TimeSpan.FromSeconds(90), $"lab-host{cut} back after the partition");
        await LabSession.Eventually(() => LabSession.Ping(toolsIp), TimeSpan.FromSeconds(30), "the isolated VM to answer ping once healed");
        Assert.Equal([qemuBefore], LabSession.DiskHolders(image));
        var cutLog = await File.ReadAllTextAsync(Path.Combine(_lab.LabDirectory, $"agent-host{cut}.log"));
        Assert.Contains("Isolated: the liveness lease cannot be counted on but the storage heartbeat lands", cutLog, StringComparison.Ordinal);
        Assert.DoesNotContain("Self-fencing", cutLog, StringComparison.Ordinal);
        Assert.Equal("running", await _lab.Xe([.. survivor, "vm-param-get", $"uuid={tools}", "param-name=power-state"]));
        Assert.Equal(await _lab.Xe([.. survivor, "host-list", $"name-label=lab-host{cut}", "--minimal"]),
            await _lab.Xe([.. survivor, "vm-param-get", $"uuid={tools}", "param-name=resident-on"]));

        // Its agent SIGKILLed (a crash), with its fence agent configured again: the host's fence daemon outlives the agent
        // and keeps the storage heartbeat moving, so the master neither power-fences the host nor restarts the VM, which
        // runs on in the same QEMU. The agent started again (as systemd would, or an upgrade) adopts it, and the VM's
        // record says it runs there.
        var cutName = $"lab-host{cut}";
        var slot = cut.ToString(System.Globalization.CultureInfo.InvariantCulture);
        await _lab.Xe([.. survivor, "host-set-power-on-mode", $"host={cutName}", "power-on-mode=lab", $"power-on-config:slot={slot}"]);
        var logMarks = _lab.AgentLogMarks();
        await _lab.LabAsync("kill-agent", slot);
        await LabSession.Eventually(async () => (await _lab.TryXe([.. survivor, "host-list", $"name-label={cutName}", "params=host-metrics-live", "--minimal"])).Output == "false",
            TimeSpan.FromSeconds(30), $"{cutName}'s lease to expire after its agent died");
        await Task.Delay(TimeSpan.FromSeconds(12));
        Assert.Equal([cut], _lab.RunningCopies(tools));
        Assert.Equal([qemuBefore], LabSession.DiskHolders(image));
        Assert.True(await LabSession.Ping(toolsIp), "the VM answers while its host's agent is dead");
        Assert.Contains($"HA: host {cutName} has no lease but its storage heartbeat moves", _lab.AgentLogsSince(logMarks), StringComparison.Ordinal);
        await _lab.LabAsync("start-agent", slot);
        await LabSession.Eventually(async () => (await _lab.TryXe([.. survivor, "host-list", "params=host-metrics-live", "--minimal"])).Output == "true,true,true",
            TimeSpan.FromSeconds(90), $"{cutName} back once its agent started again");
        Assert.Equal("running", await _lab.Xe([.. survivor, "vm-param-get", $"uuid={tools}", "param-name=power-state"]));
        Assert.Equal(await _lab.Xe([.. survivor, "host-list", $"name-label={cutName}", "--minimal"]),
            await _lab.Xe([.. survivor, "vm-param-get", $"uuid={tools}", "param-name=resident-on"]));
        Assert.Equal([qemuBefore], LabSession.DiskHolders(image));
        var fencedLog = await File.ReadAllTextAsync(Path.Combine(_lab.LabDirectory, $"fenced-host{cut}.log"));
        Assert.Contains("The agent has not reported", fencedLog, StringComparison.Ordinal);
        Assert.DoesNotContain("Self-fencing", fencedLog, StringComparison.Ordinal);
        Assert.DoesNotContain($"HA: host {cutName} powered off by its fence agent", _lab.AgentLogsSince(logMarks), StringComparison.Ordinal);

        // Its fence daemon SIGKILLed: nothing pets the host's watchdog, which resets the host 3 s later (every process of
        // it killed, as by a reset); the master confirms it off with its fence agent and HA restarts the VM elsewhere.
        // Powered on again, the host rejoins.
        await _lab.LabAsync("kill-fenced", slot);
        await LabSession.Eventually(async () => _lab.RunningCopies(tools) is [var elsewhere] && elsewhere != cut && await LabSession.Ping(toolsIp),
            TimeSpan.FromSeconds(90), "the VM to answer from another host after its host's watchdog reset it");
        Assert.Contains("resetting the host", await File.ReadAllTextAsync(Path.Combine(_lab.LabDirectory, $"watchdog-host{cut}.log")), StringComparison.Ordinal);
        await _lab.LabAsync("power-on", slot);
        await LabSession.Eventually(async () => (await _lab.TryXe([.. survivor, "host-list", "params=host-metrics-live", "--minimal"])).Output == "true,true,true",
            TimeSpan.FromSeconds(90), $"{cutName} back after its reset");
        await watching.CancelAsync();
        await watcher;
        Assert.Equal(1, mostCopies);
        Assert.Equal(1, mostHolders);
        Assert.Equal("", await _lab.Xe([.. survivor, "task-list", "status=pending", "--minimal"]));

        // Its QEMU killed by someone else (SIGKILL by pid, as the OOM killer would) on a healthy host: the host hands the
        // protected VM to HA, which starts it again, with nobody typing a command.
        var host = Assert.Single(_lab.RunningCopies(tools));
        var pid = int.Parse(File.ReadAllText(Path.Combine(_lab.LabDirectory, "..", "run", $"host{host}", "vms", tools, "qemu.pid")).Trim(),
            System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(0, (await _lab.RunAsync("kill", "-9", pid.ToString(System.Globalization.CultureInfo.InvariantCulture))).Code);
        await LabSession.Eventually(async () => LabSession.DiskHolders(image) is [var again] && again != pid && await LabSession.Ping(toolsIp),
            TimeSpan.FromSeconds(90), "the killed VM to be restarted by HA");
        Assert.Single(_lab.RunningCopies(tools));
        Assert.Equal("running", await _lab.Xe([.. survivor, "vm-param-get", $"uuid={tools}", "param-name=power-state"]));
        Assert.Equal("", await _lab.Xe([.. survivor, "task-list", "status=pending", "--minimal"]));

        // The disk: the writes before each crash and after each restart form one sequence, and the image is clean.
        await Task.Delay(2000);
        await _lab.Xe([.. survivor, "vm-shutdown", $"uuid={tools}"]);
        await _lab.AssertWriteSequenceIntactAsync(image);
    }
}
