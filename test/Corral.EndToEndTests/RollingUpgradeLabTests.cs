using System.Globalization;
using Xunit;
using Xunit.Abstractions;

namespace Corral.EndToEndTests;

/// <summary>
/// The issue's rolling upgrade, as an administrator runs it (docs/install.md, "Upgrading a pool"): with HA on and both
/// VMs protected and pinged, each host in turn, the master first (made master again once upgraded), is disabled,
/// evacuated, upgraded to the next build's package (<c>./lab upgrade</c>: what installing it does on a real host, its
/// daemons restarted one at a time) and enabled again with its VMs brought back. No ping is lost, no VM restarts (its start time stays), HA takes no action
/// (no host fenced or powered off, nothing self-fenced), and while the hosts run two builds the pool says so and refuses
/// to move a VM from a newer host to an older one, as xapi does.
/// </summary>
[Collection(FaultLabCollection.Name)]
public sealed class RollingUpgradeLabTests(FaultLab fault, ITestOutputHelper output)
{
    private readonly LabSession _lab = fault.Lab;

    [Fact]
    public async Task The_pool_is_upgraded_one_host_at_a_time_with_ha_on_and_no_vm_down_or_restarted()
    {
        await fault.ResetAsync(bothVmsRunning: true);
        var vms = new[] { FaultLab.Tools, FaultLab.NoTools };
        var uuids = new List<string>();
        var ips = new List<string>();
        foreach (var name in vms)
        {
            var uuid = await _lab.Xe("vm-list", $"name-label={name}", "--minimal");
            uuids.Add(uuid);
            ips.Add((await _lab.Xe("vm-param-get", $"uuid={uuid}", "param-name=xenstore-data", "param-key=vm-data/ip")).Split('/')[0]);
        }

        var pool = await _lab.Xe("pool-list", "--minimal");
        var shared = await _lab.Xe("sr-list", "name-label=Shared storage", "--minimal");
        await _lab.Xe("pool-ha-enable", $"heartbeat-sr-uuids={shared}");
        foreach (var vm in uuids)
        {
            await _lab.Xe("vm-param-set", $"uuid={vm}", "ha-restart-priority=restart");
        }

        // One host failure tolerated: a host disabled for its upgrade leaves two, which can still take the VMs of either.
        await _lab.Xe("pool-param-set", $"uuid={pool}", "ha-host-failures-to-tolerate=1");
        await LabSession.Eventually(async () => await _lab.Xe("pool-param-get", $"uuid={pool}", "param-name=ha-plan-exists-for") == "1",
            TimeSpan.FromSeconds(15), "the plan for one failure");

        // The next build: this build's package with the next build number, as the next commit's build would be numbered.
        var next = await NextPackageAsync();
        var startTimes = new List<string>();
        foreach (var vm in uuids)
        {
            startTimes.Add(await _lab.Xe("vm-param-get", $"uuid={vm}", "param-name=start-time"));
        }

        var marks = _lab.AgentLogMarks();
        var pingers = ips.Select(Pinger.Start).ToList();
        var lost = new List<string>();
        try
        {
            for (var host = 1; host <= 3; host++)
            {
                await UpgradeAsync(host, next);
                if (host == 1)
                {
                    // The upgraded master takes its role back: the rules of a rolling upgrade are the newest build's.
                    var host1 = await _lab.Xe("host-list", "name-label=lab-host1", "--minimal");
                    await _lab.Xe("pool-designate-new-master", $"host-uuid={host1}");
                    await LabSession.Eventually(async () => (await _lab.TryXe("pool-list", "params=master", "--minimal")).Output == host1,
                        TimeSpan.FromSeconds(60), "lab-host1 to be the master again");
                    await MixedPoolRulesAsync(pool, uuids);
                }
            }

            // One build again: the mark is gone.
            await LabSession.Eventually(async () => !(await _lab.Xe("pool-param-get", $"uuid={pool}", "param-name=other-config")).Contains("rolling_upgrade_in_progress", StringComparison.Ordinal),
                TimeSpan.FromSeconds(30), "the pool to leave its rolling upgrade");
            await Task.Delay(TimeSpan.FromSeconds(1));
        }
        finally
        {
            foreach (var pinger in pingers)
            {
                if (await pinger.StopAsync() > 0)
                {
                    lost.Add(string.Join(",", pinger.Lost));
                }

                pinger.Dispose();
            }
        }

        Assert.True(lost.Count == 0, $"pings lost during the upgrade (sequence numbers, 10 a second): {string.Join(" / ", lost)}");

        for (var i = 0; i < uuids.Count; i++)
        {
            Assert.Equal("running", await _lab.Xe("vm-param-get", $"uuid={uuids[i]}", "param-name=power-state"));
            Assert.Equal(startTimes[i], await _lab.Xe("vm-param-get", $"uuid={uuids[i]}", "param-name=start-time"));
            Assert.Single(_lab.RunningCopies(uuids[i]));
        }

        Assert.Equal("true", await _lab.Xe("pool-param-get", $"uuid={pool}", "param-name=ha-enabled"));
        var logs = _lab.AgentLogsSince(marks);
        foreach (var action in new[] { "[1001]", "[1013]", "[1014]", "[1016]", "Self-fencing", "powered off by its fence agent", "is fenced" })
        {
            Assert.DoesNotContain(action, logs, StringComparison.Ordinal);
        }

        for (var host = 1; host <= 3; host++)
        {
            Assert.DoesNotContain("Self-fencing", await File.ReadAllTextAsync(Path.Combine(_lab.LabDirectory, $"fenced-host{host}.log")), StringComparison.Ordinal);
            Assert.False(File.Exists(Path.Combine(_lab.LabDirectory, $"watchdog-host{host}.log"))
                && (await File.ReadAllTextAsync(Path.Combine(_lab.LabDirectory, $"watchdog-host{host}.log"))).Contains("resetting the host", StringComparison.Ordinal),
                $"lab-host{host}'s watchdog reset it");
        }

        Assert.Equal("", await _lab.Xe("task-list", "status=pending", "--minimal"));
    }

    /// <summary>Disables, evacuates, upgrades and enables lab-host<paramref name="host"/>, its VMs brought back.</summary>
    private async Task UpgradeAsync(int host, (string Deb, string Version) next)
    {
        var name = $"lab-host{host}";
        var uuid = await _lab.Xe("host-list", $"name-label={name}", "--minimal");
        await _lab.Xe("host-disable", $"host={name}");
        await _lab.Xe("host-evacuate", $"host={name}");
        Assert.Equal("", await _lab.Xe("vm-list", $"resident-on={uuid}", "is-control-domain=false", "--minimal"));

        // Its storage heartbeat, watched through the upgrade until the host is back: the master counts a host whose
        // heartbeat stops for 7 s (HaTimings.HeartbeatStaleAfter) with no lease as failed, so the daemons' restarts must
        // never leave it that long.
        using (var heartbeat = HeartbeatGap.Watch(Path.Combine(_lab.LabDirectory, "shared"), uuid))
        {
            await _lab.LabAsync("upgrade", host.ToString(CultureInfo.InvariantCulture), next.Deb);
            await LabSession.Eventually(async () =>
                    (await _lab.TryXe("host-param-get", $"uuid={uuid}", "param-name=software-version", "param-key=corral_version")).Output.StartsWith(next.Version + "+", StringComparison.Ordinal)
                    && (await _lab.TryXe("host-list", "params=host-metrics-live", "--minimal")).Output == "true,true,true",
                TimeSpan.FromSeconds(120), $"{name} back on Corral {next.Version}");
            var gap = await heartbeat.StopAsync();
            output.WriteLine($"{name}: the heartbeat's longest pause through the upgrade: {gap.TotalSeconds:0.0} s");
            Assert.True(gap < TimeSpan.FromSeconds(7), $"{name}'s heartbeat stopped for {gap.TotalSeconds:0.0} s during its upgrade");
        }

        Assert.Equal("corral-" + next.Version, await _lab.Xe("host-param-get", $"uuid={uuid}", "param-name=software-version", "param-key=build_number"));
        await _lab.Xe("host-enable", $"host={name}", "restore-vms=true");
    }

    /// <summary>After the first host's upgrade: the pool says it is in a rolling upgrade, and a VM does not move down.</summary>
    private async Task MixedPoolRulesAsync(string pool, List<string> vms)
    {
        await LabSession.Eventually(async () => (await _lab.Xe("pool-param-get", $"uuid={pool}", "param-name=other-config", "param-key=rolling_upgrade_in_progress")) == "true",
            TimeSpan.FromSeconds(30), "the pool to say a rolling upgrade is in progress");
        var host1 = await _lab.Xe("host-list", "name-label=lab-host1", "--minimal");
        foreach (var vm in vms)
        {
            Assert.Equal(host1, await _lab.Xe("vm-param-get", $"uuid={vm}", "param-name=resident-on"));
        }

        var (code, why) = await _lab.TryXe("vm-migrate", $"uuid={vms[0]}", "host=lab-host2", "live=true");
        Assert.NotEqual(0, code);
        Assert.Contains("not supported during an upgrade", why, StringComparison.Ordinal);
        Assert.Equal(host1, await _lab.Xe("vm-param-get", $"uuid={vms[0]}", "param-name=resident-on"));
    }

    /// <summary>packaging/build-deb over the lab's build, numbered one past the installed package.</summary>
    private async Task<(string Deb, string Version)> NextPackageAsync()
    {
        var installed = (await File.ReadAllTextAsync(Path.Combine(LabSession.Repo, ".build", "root", "usr", "lib", "corral", "version"))).Trim();
        var build = int.Parse(installed[(installed.LastIndexOf('.') + 1)..], CultureInfo.InvariantCulture) + 1;
        var version = installed[..(installed.LastIndexOf('.') + 1)] + build.ToString(CultureInfo.InvariantCulture);
        var outDir = Path.Combine(_lab.LabDirectory, "next-package");
        var (code, output) = await _lab.RunAsync(Path.Combine(LabSession.Repo, "packaging", "build-deb"),
            "--publish", Path.Combine(LabSession.Repo, ".build"), "--out", outDir, "--compress", "none", "--build-number", build.ToString(CultureInfo.InvariantCulture));
        Assert.True(code == 0, output);
        // Its last line on standard output is the package's path (its log lines, on standard error, name it too).
        var deb = output.Split('\n').Select(l => l.Trim()).First(l => l.EndsWith(".deb", StringComparison.Ordinal) && File.Exists(l));
        Assert.Contains(version, deb, StringComparison.Ordinal);
        return (deb, version);
    }

    /// <summary>The longest time a host's heartbeat file (a file SR's statefile directory) kept one counter.</summary>
    private sealed class HeartbeatGap : IDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly Task<TimeSpan> _watch;

        private HeartbeatGap(string srRoot, string hostUuid) => _watch = WatchAsync(srRoot, hostUuid, _stop.Token);

        public static HeartbeatGap Watch(string srRoot, string hostUuid) => new(srRoot, hostUuid);

        public async Task<TimeSpan> StopAsync()
        {
            await _stop.CancelAsync();
            return await _watch;
        }

        private static async Task<TimeSpan> WatchAsync(string srRoot, string hostUuid, CancellationToken stop)
        {
            var file = Directory.EnumerateFiles(srRoot, hostUuid, SearchOption.AllDirectories).Single();
            var last = "";
            var since = DateTime.UtcNow;
            var longest = TimeSpan.Zero;
            while (!stop.IsCancellationRequested)
            {
                string counter;
                try
                {
                    counter = File.ReadAllText(file).Split(' ')[0];
                }
                catch (IOException)
                {
                    counter = last; // mid-rename: as if unchanged
                }

                var now = DateTime.UtcNow;
                if (counter != last)
                {
                    last = counter;
                    since = now;
                }

                longest = now - since > longest ? now - since : longest;
                await Task.Delay(50, CancellationToken.None);
            }

            return longest;
        }

        public void Dispose() => _stop.Dispose();
    }
}
