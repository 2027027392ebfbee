using System.Diagnostics;
using System.Globalization;
using Xunit;
using Xunit.Abstractions;

namespace Corral.EndToEndTests;

/// <summary>
/// Jepsen-style HA faults through the lab, each checked against the invariants HA promises rather than the absence of
/// exceptions: never two running copies of a VM (the process table watched every 50 ms through the fault), every
/// protected VM answering ping within a bound, the guest's on-disk write sequence without gap or repeat and a clean
/// <c>qemu-img check</c>, and every task ended. One fault: a host's etcd member dies (its agent lives on), as the
/// member of the VMs' host and as the cluster's leader. Then, on the same lab: the master's plug is pulled in the middle
/// of a live migration, with the master as the migration's source and as a third host.
/// </summary>
[Collection(FaultLabCollection.Name)]
public sealed class HaFaultLabTests(FaultLab ha, ITestOutputHelper output)
{
    private const string Tools = FaultLab.Tools;
    private const string NoTools = FaultLab.NoTools;
    private readonly LabSession _lab = ha.Lab;

    /// <summary>
    /// Both faults one after the other, on the lab the HA tests share (<see cref="FaultLab"/>): the etcd members' deaths
    /// first, which leave the pool as it was, then the master's plug.
    /// </summary>
    [Fact]
    public async Task Losing_an_etcd_member_fences_nothing_and_pulling_the_masters_plug_mid_migration_leaves_one_copy()
    {
        await ha.ResetAsync();
        var tools = await _lab.Xe("vm-list", $"name-label={Tools}", "--minimal");
        var noTools = await _lab.Xe("vm-list", $"name-label={NoTools}", "--minimal");
        await ProtectAsync(tools, noTools);
        await LosingAnEtcdMemberNeitherFencesTheHostsVmsNorStopsThePoolAsync(tools, noTools);
        Assert.Equal(await _lab.Xe("host-list", "name-label=lab-host1", "--minimal"), await _lab.Xe("pool-list", "params=master", "--minimal"));
        await PullingTheMastersPlugMidMigrationLeavesOneCopyAndEndsTheMigrationAsync(tools, noTools);
    }

    private async Task LosingAnEtcdMemberNeitherFencesTheHostsVmsNorStopsThePoolAsync(string tools, string noTools)
    {
        var toolsIp = await IpOfAsync(tools);
        var noToolsIp = await IpOfAsync(noTools);
        await StartWritingSequenceAsync(tools, toolsIp, "lab-host1");

        using var watcher = CopyWatcher.Start(_lab, [tools, noTools]);
        foreach (var leader in new[] { false, true })
        {
            // The member to kill: the leader's, or one that is not the leader (the case an agent cut off from its own
            // member meets most). The VMs go to that host first: a vm-migrate after the previous round also shows
            // the pool still takes commands.
            var (leaderHost, members) = await EtcdStatusAsync();
            Assert.Equal(3, members);
            var target = leader ? leaderHost : new[] { 1, 2, 3 }.First(h => h != leaderHost);
            foreach (var vm in new[] { tools, noTools })
            {
                if (Assert.Single(_lab.RunningCopies(vm)) is var from && from != target)
                {
                    await MigrateAsync(watcher, vm, from, target, []);
                }

                watcher.Expect(vm, target);
            }

            // Both answer before the fault, so that a guest lost on its way here is not taken for the fault's doing.
            await AnswersAsync(noTools, noToolsIp, "the VM without tools");
            await AnswersAsync(tools, toolsIp, "the test VM");
            var log = Path.Combine(_lab.LabDirectory, $"agent-host{target}.log");
            var logBefore = (await File.ReadAllTextAsync(log)).Length;
            var pidFile = Path.Combine(_lab.LabDirectory, $"host{target}", "etcd.pid");
            var pid = int.Parse((await File.ReadAllTextAsync(pidFile)).Trim(), CultureInfo.InvariantCulture);
            using var pingTools = Pinger.Start(toolsIp);
            using var pingNoTools = Pinger.Start(noToolsIp);
            await Task.Delay(1000);

            output.WriteLine($"{DateTime.Now:HH:mm:ss.fff} killing the etcd member of lab-host{target} (pid {pid}, leader: {leader})");
            using (var member = Process.GetProcessById(pid))
            {
                member.Kill();
            }

            // Its parent is the agent (which reaps it when it gets round to it): dead is gone or a zombie.
            await LabSession.Eventually(() => Task.FromResult(IsGone(pid)), TimeSpan.FromSeconds(10), "the etcd member to die");

            // Long enough for the lease to have expired several times over (TTL 5 s) had the agent lost it, and for the
            // agent to bring its member back.
            await Task.Delay(TimeSpan.FromSeconds(15));
            await LabSession.Eventually(async () => (await EtcdStatusAsync()).Members == 3, TimeSpan.FromSeconds(60),
                $"lab-host{target}'s etcd member back: 3 healthy members");
            var restarted = int.Parse((await File.ReadAllTextAsync(pidFile)).Trim(), CultureInfo.InvariantCulture);
            Assert.NotEqual(pid, restarted);

            // Nothing on the VMs' path depends on etcd: they run on untouched. A lost ping or two is tolerated for
            // the CPU the 2-core machine gives to etcd catching up and agents reconnecting, stalling a TCG guest.
            var lostTools = await pingTools.StopAsync();
            var lostNoTools = await pingNoTools.StopAsync();
            output.WriteLine($"lost pings: {lostTools}, {lostNoTools}");
            Assert.True(lostTools <= 2, $"{lostTools} pings lost to the test VM\n{await GuestDiagnostics.DescribeAsync(_lab, tools, toolsIp)}");
            Assert.True(lostNoTools <= 2, $"{lostNoTools} pings lost to the VM without tools\n{await GuestDiagnostics.DescribeAsync(_lab, noTools, noToolsIp)}");
            Assert.Equal([target], _lab.RunningCopies(tools));
            Assert.Equal([target], _lab.RunningCopies(noTools));
            watcher.AssertNoViolation();
            var since = (await File.ReadAllTextAsync(log))[logBefore..];
            Assert.DoesNotContain("Self-fencing", since, StringComparison.Ordinal);
            Assert.DoesNotContain("Liveness lease lost", since, StringComparison.Ordinal);
            Assert.Equal("true,true,true", await _lab.Xe("host-list", "params=host-metrics-live", "--minimal"));
            Assert.Equal("", await _lab.Xe("task-list", "status=pending", "--minimal"));
        }

        // Still taking commands after both faults: the VMs move live again (the first round's faulted host is free).
        var runsOn = Assert.Single(_lab.RunningCopies(tools));
        await MigrateAsync(watcher, tools, runsOn, new[] { 1, 2, 3 }.First(h => h != runsOn), []);
        await watcher.StopAsync();
        watcher.AssertNoViolation();
        Assert.Equal("", await _lab.Xe("task-list", "status=pending", "--minimal"));
        await AssertDiskIntactAsync(tools, []);
    }

    private async Task PullingTheMastersPlugMidMigrationLeavesOneCopyAndEndsTheMigrationAsync(string tools, string noTools)
    {
        var toolsIp = await IpOfAsync(tools);
        // One guest is enough here, and the 2-core machine migrates it faster without the other.
        await _lab.Xe("vm-shutdown", $"uuid={noTools}");
        await StartWritingSequenceAsync(tools, toolsIp, "lab-host1");
        using var watcher = CopyWatcher.Start(_lab, [tools]);

        // The master (lab-host1) is the migration's source.
        var survivor = LabSession.On(_lab.Addresses[1]);
        var pulled = await MigrateAndPullMastersPlugAsync(watcher, tools, source: 1, destination: 2, master: 1);
        await AssertRecoveredAsync(watcher, tools, toolsIp, deadHost: 1, survivor, pulled);

        // Back to three hosts; the master is now lab-host2 or lab-host3, and the migration runs between the two others.
        await _lab.LabAsync("power-on", "1");
        await LabSession.Eventually(async () => (await _lab.TryXe([.. survivor, "host-list", "params=host-metrics-live", "--minimal"])).Output == "true,true,true",
            TimeSpan.FromSeconds(90), "lab-host1 back in the pool");
        var masterRef = await _lab.Xe([.. survivor, "pool-list", "params=master", "--minimal"]);
        var master = await HostNumberAsync(survivor, masterRef);
        var source = new[] { 1, 2, 3 }.First(h => h != master);
        var destination = new[] { 1, 2, 3 }.First(h => h != master && h != source);
        var runsOn = Assert.Single(_lab.RunningCopies(tools));
        if (runsOn != source)
        {
            await MigrateAsync(watcher, tools, runsOn, source, survivor);
        }

        survivor = LabSession.On(_lab.Addresses[source - 1]);
        using (var ping = Pinger.Start(toolsIp))
        {
            // Neither end of the migration died: the VM runs on throughout (how many pings it lost is reported, not
            // asserted; the fault is the master's, whose etcd member may have been the leader).
            pulled = await MigrateAndPullMastersPlugAsync(watcher, tools, source, destination, master);
            await AssertRecoveredAsync(watcher, tools, toolsIp, master, survivor, pulled);
            output.WriteLine($"pings lost while the migration went on without its master: {await ping.StopAsync()}");
        }
        await watcher.StopAsync();
        watcher.AssertNoViolation();
        await AssertDiskIntactAsync(tools, survivor);
    }

    /// <summary>
    /// Starts a slow live migration (xe in the background, as an administrator's terminal), waits until its memory is
    /// on the way, and pulls the master's plug.
    /// </summary>
    /// <returns>A stopwatch started as the plug was pulled.</returns>
    private async Task<Stopwatch> MigrateAndPullMastersPlugAsync(CopyWatcher watcher, string vm, int source, int destination, int master)
    {
        Assert.Equal([source], _lab.RunningCopies(vm));
        // The destination's QEMU waits with -incoming and runs the guest only once all of it has arrived, the
        // source's then being paused for good: while the source's process lives, the pair is one copy.
        watcher.ExpectMigration(vm, source, destination);
        // 10 MB/s: the 128 MB guest takes over ten seconds to move, so the plug is pulled well inside the migration.
        using var xe = StartXe(LabSession.On(_lab.Addresses[master - 1], "vm-migrate", $"uuid={vm}", $"host=lab-host{destination}", "live=true", "bandwidth=10000000"));
        var said = Task.WhenAll(xe.StandardOutput.ReadToEndAsync(), xe.StandardError.ReadToEndAsync());
        var asked = _lab.AgentLogMarks();
        try
        {
            // A migration xe was refused ends xe at once: that is the failure to report, not a wait for a QEMU that never comes.
            await LabSession.Eventually(() => Task.FromResult(xe.HasExited || CopyWatcher.Copies(_lab, vm).Any(c => c.Host == destination)),
                TimeSpan.FromSeconds(60), "the destination's incoming QEMU");
            if (xe.HasExited)
            {
                Assert.Fail($"xe vm-migrate ended ({xe.ExitCode}) before the destination's QEMU started: {string.Concat(await said).Trim()}");
            }

        }
        catch (Exception)
        {
            output.WriteLine($"what the agents logged of the migration (source lab-host{source}, destination lab-host{destination}, master lab-host{master}):");
            output.WriteLine(_lab.AgentLogsSince(asked, line => line.Contains("igrat", StringComparison.Ordinal) || line.Contains("warn", StringComparison.Ordinal)
                || line.Contains("fail", StringComparison.Ordinal) || line.Contains("lockspace", StringComparison.Ordinal)));
            throw;
        }

        await Task.Delay(2000);
        Assert.False(xe.HasExited, "the migration ended before the fault");
        output.WriteLine($"{DateTime.Now:HH:mm:ss.fff} pulling the plug on lab-host{master} (source lab-host{source}, destination lab-host{destination})");
        await _lab.LabAsync("pull-plug", master.ToString(CultureInfo.InvariantCulture));
        var pulled = Stopwatch.StartNew();
        watcher.HostDied(master);

        // xe talked to the dead master, which never answers again: it is stopped if it still waits. The migration's
        // fate is checked in the pool itself.
        using var patience = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            await xe.WaitForExitAsync(patience.Token);
        }
        catch (OperationCanceledException)
        {
            xe.Kill();
            await xe.WaitForExitAsync();
        }

        output.WriteLine($"xe vm-migrate ended ({xe.ExitCode}): {string.Concat(await said).Trim()}");
        return pulled;
    }

    /// <summary>xe as <see cref="LabSession.TryXe"/> runs it, but as a process of the test's own, to stop if it hangs.</summary>
    private Process StartXe(string[] args)
    {
        var info = new ProcessStartInfo(Path.Combine(LabSession.Repo, ".build/xe/xe"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        // The session's HOME, where the lab wrote its ~/.xe.
        info.Environment["HOME"] = Path.GetDirectoryName(_lab.LabDirectory)!;
        return Process.Start(info)!;
    }

    private async Task AssertRecoveredAsync(CopyWatcher watcher, string vm, string ip, int deadHost, string[] survivor, Stopwatch clock)
    {
        try
        {
            await LabSession.Eventually(() => LabSession.Ping(ip), TimeSpan.FromSeconds(90), "the VM to answer ping after the master's plug was pulled");
        }
        catch (Exception) when (_lab.RunningCopies(vm) is [var host])
        {
            // For the reader of a failure: what the guest said last, and the host's VM network.
            var console = Directory.GetFiles(Path.Combine(_lab.LabDirectory, "..", "run", $"host{host}", "vms", vm), "*.log");
            output.WriteLine($"the VM runs on lab-host{host}; its console ends: " + string.Join('\n', console.SelectMany(File.ReadAllLines).TakeLast(30)));
            var ns = _lab.Namespace(host);
            // With packet counters, twice a second apart: a packet storm on the VM network shows as racing counters.
            output.WriteLine((await _lab.RunAsync("ip", "-n", ns, "-s", "-d", "link")).Output);
            await Task.Delay(1000);
            output.WriteLine((await _lab.RunAsync("ip", "-n", ns, "-s", "link")).Output);
            output.WriteLine((await _lab.RunAsync("ip", "netns", "exec", ns, "bridge", "fdb", "show", "br", "xenbr1")).Output);
            output.WriteLine((await _lab.RunAsync("ip", "neigh")).Output);
            throw;
        }

        output.WriteLine($"the VM answers ping {clock.Elapsed.TotalSeconds:0.0} s after the plug was pulled");
        await LabSession.Eventually(async () => (await _lab.TryXe([.. survivor, "vm-param-get", $"uuid={vm}", "param-name=power-state"])).Output == "running"
            && _lab.RunningCopies(vm).Count == 1, TimeSpan.FromSeconds(60), "the VM running, once");
        var copy = Assert.Single(_lab.RunningCopies(vm));
        Assert.NotEqual(deadHost, copy);
        Assert.Equal(await _lab.Xe([.. survivor, "host-list", $"name-label=lab-host{copy}", "--minimal"]),
            await _lab.Xe([.. survivor, "vm-param-get", $"uuid={vm}", "param-name=resident-on"]));
        Assert.Equal("false", await _lab.Xe([.. survivor, "host-list", $"name-label=lab-host{deadHost}", "params=host-metrics-live", "--minimal"]));
        Assert.NotEqual(await _lab.Xe([.. survivor, "host-list", $"name-label=lab-host{deadHost}", "--minimal"]),
            await _lab.Xe([.. survivor, "pool-list", "params=master", "--minimal"]));
        // The migration ended one way or the other: its tasks are not left pending, and it no longer holds the VM.
        await LabSession.Eventually(async () => await _lab.Xe([.. survivor, "task-list", "status=pending", "--minimal"]) == "",
            TimeSpan.FromSeconds(30), "no pending task");
        Assert.Equal("", await _lab.Xe([.. survivor, "vm-param-get", $"uuid={vm}", "param-name=current-operations"]));
        watcher.AssertNoViolation();

        // The pool still moves the VM: the migration's lock was released.
        await MigrateAsync(watcher, vm, copy, new[] { 1, 2, 3 }.First(h => h != deadHost && h != copy), survivor);
        watcher.AssertNoViolation();
    }

    /// <summary>A live migration the watcher knows of: during it the destination's waiting QEMU is not a second copy.</summary>
    private async Task MigrateAsync(CopyWatcher watcher, string vm, int from, int to, string[] on)
    {
        watcher.ExpectMigration(vm, from, to);
        await _lab.Xe([.. on, "vm-migrate", $"uuid={vm}", $"host=lab-host{to}", "live=true"]);
        Assert.Equal([to], _lab.RunningCopies(vm));
        watcher.Expect(vm, to);
    }

    /// <summary>Waits up to 30 s for the VM to answer ping; fails with what the lab shows of it if it does not.</summary>
    private async Task AnswersAsync(string vm, string ip, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!await LabSession.Ping(ip))
        {
            Assert.True(DateTime.UtcNow < deadline, $"{what} does not answer ping\n{await GuestDiagnostics.DescribeAsync(_lab, vm, ip)}");
            await Task.Delay(500);
        }
    }

    private async Task ProtectAsync(params string[] vms)
    {
        var shared = await _lab.Xe("sr-list", "name-label=Shared storage", "--minimal");
        await _lab.Xe("pool-ha-enable", $"heartbeat-sr-uuids={shared}");
        foreach (var vm in vms)
        {
            await _lab.Xe("vm-param-set", $"uuid={vm}", "ha-restart-priority=restart");
        }
    }

    /// <summary>
    /// The guest writes a numbered line to its disk every 100 ms from boot on, so a crash's damage would show (the
    /// sequence goes on from the disk's last line across boots).
    /// </summary>
    private async Task StartWritingSequenceAsync(string vm, string ip, string host)
    {
        if (await _lab.Xe("vm-param-get", $"uuid={vm}", "param-name=power-state") == "running")
        {
            await _lab.Xe("vm-shutdown", $"uuid={vm}");
        }

        await _lab.Xe("vm-param-set", $"uuid={vm}", "xenstore-data:vm-data/seqwrite=1");
        await _lab.Xe("vm-start", $"uuid={vm}", $"on={host}");
        await LabSession.Eventually(() => LabSession.Ping(ip), TimeSpan.FromSeconds(60), "the test VM after its restart");
        await Task.Delay(2000);
    }

    private async Task AssertDiskIntactAsync(string vm, string[] on)
    {
        await Task.Delay(2000);
        await _lab.Xe([.. on, "vm-shutdown", $"uuid={vm}"]);
        var vdi = await _lab.Xe([.. on, "vbd-list", $"vm-uuid={vm}", "type=Disk", "params=vdi-uuid", "--minimal"]);
        await _lab.AssertWriteSequenceIntactAsync(_lab.VdiFile(vdi));
    }

    /// <summary>The host whose etcd member leads, and how many of the three members answer healthy.</summary>
    private async Task<(int Leader, int Members)> EtcdStatusAsync()
    {
        var leader = 0;
        var healthy = 0;
        for (var host = 1; host <= 3; host++)
        {
            // etcdctl's simple output: endpoint, member id, version, db size, is leader, is learner, ...
            var (code, status) = await _lab.Etcdctl(host, "--command-timeout=2s", "endpoint", "status");
            var (healthCode, _) = await _lab.Etcdctl(host, "--command-timeout=2s", "endpoint", "health");
            if (code == 0 && healthCode == 0)
            {
                healthy++;
                if (status.Split(',', StringSplitOptions.TrimEntries) is [_, _, _, _, "true", ..])
                {
                    leader = host;
                }
            }
        }

        return (leader, healthy);
    }

    private static bool IsGone(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/stat").Split(") ")[^1].StartsWith('Z');
        }
        catch (IOException)
        {
            return true;
        }
    }

    private async Task<string> IpOfAsync(string vm) =>
        (await _lab.Xe("vm-param-get", $"uuid={vm}", "param-name=xenstore-data", "param-key=vm-data/ip")).Split('/')[0];

    private async Task<int> HostNumberAsync(string[] on, string hostRefOrUuid)
    {
        for (var host = 1; host <= 3; host++)
        {
            var uuid = await _lab.Xe([.. on, "host-list", $"name-label=lab-host{host}", "--minimal"]);
            if (uuid == hostRefOrUuid)
            {
                return host;
            }
        }

        throw new InvalidOperationException("no lab host " + hostRefOrUuid);
    }

    /// <summary>
    /// Watches the process table every 50 ms for QEMU processes of the given VMs and records every sample that breaks
    /// the invariant: more than one copy able to run the guest, or (when the test says where a VM must stay) a copy
    /// anywhere else or none at all.
    /// </summary>
    private sealed class CopyWatcher : IDisposable
    {
        private readonly LabSession _lab;
        private readonly IReadOnlyList<string> _vms;
        private readonly CancellationTokenSource _stop = new();
        private readonly Dictionary<string, int?> _expected = new(StringComparer.Ordinal);
        private readonly Dictionary<string, (int Source, int Destination)> _migrations = new(StringComparer.Ordinal);
        private readonly HashSet<int> _dead = [];
        private readonly List<string> _violations = [];
        private readonly Lock _lock = new();
        private Task _loop = Task.CompletedTask;

        private CopyWatcher(LabSession lab, IReadOnlyList<string> vms)
        {
            _lab = lab;
            _vms = vms;
        }

        public static CopyWatcher Start(LabSession lab, IReadOnlyList<string> vms)
        {
            var watcher = new CopyWatcher(lab, vms);
            watcher._loop = Task.Run(watcher.LoopAsync);
            return watcher;
        }

        /// <summary>The VM must run on exactly this host at every sample from now on (null: anywhere, once).</summary>
        public void Expect(string vm, int? host)
        {
            lock (_lock)
            {
                _expected[vm] = host;
                _migrations.Remove(vm);
            }
        }

        public void ExpectMigration(string vm, int source, int destination)
        {
            lock (_lock)
            {
                _expected[vm] = null;
                _migrations[vm] = (source, destination);
                // Both ends run again (a host whose plug was pulled earlier has been powered on).
                _dead.Remove(source);
                _dead.Remove(destination);
            }
        }

        public void HostDied(int host)
        {
            lock (_lock)
            {
                _dead.Add(host);
            }
        }

        /// <summary>The live QEMU processes of the VM, by lab host, and whether each was started to receive a migration.</summary>
        public static List<(int Host, bool Incoming)> Copies(LabSession lab, string vm)
        {
            var copies = new List<(int, bool)>();
            for (var host = 1; host <= 3; host++)
            {
                var pidFile = Path.Combine(lab.LabDirectory, "..", "run", $"host{host}", "vms", vm, "qemu.pid");
                try
                {
                    if (File.Exists(pidFile) && int.TryParse(File.ReadAllText(pidFile).Trim(), CultureInfo.InvariantCulture, out var pid)
                        && File.ReadAllText($"/proc/{pid}/cmdline").Split('\0') is var args && args.Contains(vm)
                        && !File.ReadAllText($"/proc/{pid}/stat").Split(") ")[^1].StartsWith('Z'))
                    {
                        copies.Add((host, args.Contains("-incoming")));
                    }
                }
                catch (IOException)
                {
                    // The process went between two reads: not a copy.
                }
            }

            return copies;
        }

        private async Task LoopAsync()
        {
            while (!_stop.IsCancellationRequested)
            {
                foreach (var vm in _vms)
                {
                    var copies = Copies(_lab, vm);
                    lock (_lock)
                    {
                        var counted = copies.Where(c => !IsWaitingPeer(vm, c, copies)).Select(c => c.Host).ToList();
                        var expected = _expected.GetValueOrDefault(vm);
                        if (counted.Count > 1 || (expected is { } host && !counted.SequenceEqual([host])))
                        {
                            _violations.Add($"{DateTime.Now:HH:mm:ss.fff} VM {vm}: copies on hosts [{string.Join(",", copies.Select(c => c.Host + (c.Incoming ? "(incoming)" : "")))}]"
                                + (expected is { } e ? $", expected only on {e}" : ""));
                        }
                    }
                }

                try
                {
                    await Task.Delay(50, _stop.Token);
                }
                catch (OperationCanceledException)
                {
                }
            }
        }

        /// <summary>
        /// The destination's -incoming QEMU of a migration whose source process still runs on a live host: QEMU's
        /// protocol lets only one of the pair run the guest. Once the source is gone, every process counts. (The
        /// source's own QEMU may have come in by an earlier migration: its -incoming says nothing.)
        /// </summary>
        private bool IsWaitingPeer(string vm, (int Host, bool Incoming) copy, List<(int Host, bool Incoming)> copies) =>
            copy.Incoming && _migrations.TryGetValue(vm, out var m) && copy.Host == m.Destination
            && !_dead.Contains(m.Source) && copies.Any(c => c.Host == m.Source);

        public void AssertNoViolation()
        {
            lock (_lock)
            {
                Assert.True(_violations.Count == 0, string.Join('\n', _violations.Take(20)));
            }
        }

        public async Task StopAsync()
        {
            await _stop.CancelAsync();
            await _loop;
        }

        public void Dispose()
        {
            _stop.Cancel();
            _stop.Dispose();
        }
    }
}
