using Xunit;
using Xunit.Abstractions;

namespace Corral.EndToEndTests;

/// <summary>
/// Pool membership and the seed's recovery commands, run through the lab as an administrator would: a host ejected
/// becomes a pool of its own and joins back; with 2 of 3 hosts unplugged (the pool database has lost its quorum)
/// <c>pool-emergency-transition-to-master</c> on the survivor and <c>pool-recover-slaves</c> once the others are back
/// return a working 3-host pool with nothing lost from the pool database.
/// </summary>
[Collection(FaultLabCollection.Name)]
public sealed class PoolRecoveryLabTests(FaultLab fault, ITestOutputHelper output)
{
    private readonly LabSession _lab = fault.Lab;
    private readonly List<string> _recoveries = [];
    private readonly string _needleInClear = $"wire-clear-{Guid.NewGuid():N}";

    [Fact]
    public async Task Eject_join_and_recovery_from_a_lost_quorum_keep_the_pool_and_its_database()
    {
        await fault.ResetAsync(bothVmsRunning: true);
        var (a1, a3) = (_lab.Addresses[0], _lab.Addresses[2]);
        var host1 = await _lab.Xe("host-list", "name-label=lab-host1", "--minimal");
        var host3 = await _lab.Xe("host-list", "name-label=lab-host3", "--minimal");

        // Eject: refused for the master; a member leaves and is a pool of one, then joins back.
        var (refused, why) = await _lab.TryXe("pool-eject", $"host-uuid={host1}");
        Assert.NotEqual(0, refused);
        Assert.Contains("master", why, StringComparison.OrdinalIgnoreCase);
        await _lab.Xe("pool-eject", $"host-uuid={host3}");
        await LabSession.Eventually(async () => (await _lab.Xe("host-list", "--minimal")).Split(',').Length == 2, TimeSpan.FromSeconds(60), "the pool to forget lab-host3");
        await LabSession.Eventually(async () =>
        {
            var (code, master) = await _lab.TryXe(LabSession.On(a3, "pool-list", "params=master", "--minimal"));
            return code == 0 && master == host3;
        }, TimeSpan.FromSeconds(90), "lab-host3 to be a pool of its own");
        Assert.Equal(host3, await _lab.Xe(LabSession.On(a3, "host-list", "--minimal")));

        // From the join back to the recovery, the management network is captured (WireLabTests has why).
        var capture = await WireCapture.StartAsync(_lab, "recovery");
        try
        {
            await JoinBackAndRecoverAsync(a1, a3, host3);
        }
        finally
        {
            await capture.StopAsync();
        }

        var needles = new Dictionary<string, string> { ["root's password"] = _lab.Password, ["the needle sent in clear"] = _needleInClear };
        for (var host = 1; host <= 3; host++)
        {
            foreach (var (name, secret) in WireCapture.HostSecrets(_lab, host))
            {
                needles[name] = secret;
            }
        }

        var reading = await WireCapture.ReadAsync(capture.File, needles);
        output.WriteLine(reading.Summary());
        Assert.True(reading.Saw("the needle sent in clear"), "the capture did not see what was sent in clear: " + reading.Summary());
        var leaks = reading.FoundBesides("the needle sent in clear");
        Assert.True(leaks.Count == 0, "in clear on the management network:\n" + string.Join('\n', leaks));
        File.Delete(capture.File);
    }

    private async Task JoinBackAndRecoverAsync(string a1, string a3, string host3)
    {
        var (badJoin, badWhy) = await _lab.TryXe(LabSession.On(a3, "pool-join", $"master-address={a1}", "master-username=root", "master-password=wrong"));
        Assert.NotEqual(0, badJoin);
        Assert.Contains("Authentication", badWhy, StringComparison.OrdinalIgnoreCase);
        await _lab.Xe(LabSession.On(a3, "pool-join", $"master-address={a1}", "master-username=root", $"master-password={_lab.Password}"));
        await WireCapture.SendInClearAsync(a1, _needleInClear);
        // One of the directory's people logs in: the pool checks her password with the lab's directory (same password).
        Assert.Contains("Corral test VM", await _lab.Xe(LabSession.On(a1, "-u", "rory", "-pw", _lab.Password, "vm-list", "params=name-label")), StringComparison.Ordinal);
        await LabSession.Eventually(async () => await _lab.Xe("host-list", "params=host-metrics-live", "--minimal") == "true,true,true",
            TimeSpan.FromSeconds(90), "lab-host3 to join back");
        Assert.Equal(3, await VotersAsync(a1));

        // A host cut off from the network, or frozen, is seen dead within seconds and live again once it is back.
        foreach (var (fault, recovery) in new[] { ("partition", "heal"), ("freeze", "thaw") })
        {
            await _lab.LabAsync(fault, "2");
            // TryXe: should lab-host2 have led the pool database, the others elect a new leader meanwhile, and a call
            // made during the election is refused (HOST_IN_EMERGENCY_MODE) for a second or two.
            await LabSession.Eventually(async () => (await _lab.TryXe("host-list", "name-label=lab-host2", "params=host-metrics-live", "--minimal")).Output == "false",
                TimeSpan.FromSeconds(30), $"lab-host2 to show dead after ./lab {fault}");
            foreach (var other in new[] { "lab-host1", "lab-host3" })
            {
                Assert.Equal("true", await _lab.Xe("host-list", $"name-label={other}", "params=host-metrics-live", "--minimal"));
            }

            await _lab.LabAsync(recovery, "2");
            await LabSession.Eventually(async () => await _lab.Xe("host-list", "params=host-metrics-live", "--minimal") == "true,true,true",
                TimeSpan.FromSeconds(60), $"lab-host2 to be live after ./lab {recovery}");
        }

        // Quorum lost: the master and one more host unplugged; lab-host3 alone cannot write.
        var before = await DatabaseSummaryAsync(a1);
        await _lab.LabAsync("pull-plug", "1");
        await _lab.LabAsync("pull-plug", "2");
        await LabSession.Eventually(async () => (await _lab.TryXe(LabSession.On(a3, "vm-list"))).Output.Contains("emergency mode", StringComparison.Ordinal),
            TimeSpan.FromSeconds(30), "lab-host3 to say it is in emergency mode");
        await _lab.Xe(LabSession.On(a3, "pool-emergency-transition-to-master"));
        await LabSession.Eventually(async () =>
        {
            var (code, master) = await _lab.TryXe(LabSession.On(a3, "pool-list", "params=master", "--minimal"));
            return code == 0 && master == host3;
        }, TimeSpan.FromSeconds(60), "lab-host3 to be master");
        await LabSession.Eventually(async () => await _lab.Xe(LabSession.On(a3, "host-list", "params=host-metrics-live", "--minimal"))
            is var live && live.Split(',').Count(v => v == "false") == 2, TimeSpan.FromSeconds(30), "both dead hosts to show host-metrics-live false");
        Assert.Equal(before, await DatabaseSummaryAsync(a3));

        // The others come back and follow the new master.
        var marks = _lab.AgentLogMarks();
        try
        {
            await FollowTheNewMasterAsync(a1, a3, host3, before);
        }
        catch (Exception)
        {
            // What the agents said of the recovery: CI shows only this test's output, and the logs stay on its machine.
            var said = _lab.AgentLogsSince(marks, line => line.Contains("Membership", StringComparison.Ordinal)
                || line.Contains(" fail:", StringComparison.Ordinal) || (line.Contains(" warn:", StringComparison.Ordinal)
                && !line.Contains("Grpc.Core.RpcException", StringComparison.Ordinal))).Split('\n');
            foreach (var line in said.TakeLast(30).Concat(_recoveries.TakeLast(6)))
            {
                output.WriteLine(line.Length > 220 ? line[..220] : line);
            }

            throw;
        }
    }

    private async Task FollowTheNewMasterAsync(string a1, string a3, string host3, string before)
    {
        await _lab.LabAsync("power-on", "1");
        await _lab.LabAsync("power-on", "2");
        foreach (var address in _lab.Addresses.Take(2))
        {
            await LabSession.Eventually(async () => (await _lab.TryXe(LabSession.On(address, "host-list", "--minimal"))).Output
                is var o && !o.Contains("calling connect", StringComparison.Ordinal) && !o.Contains("Lost connection", StringComparison.Ordinal),
                TimeSpan.FromSeconds(60), $"the API of {address} after power-on");
        }

        // One call takes each host in turn, until it is live in the new master's pool database.
        var recovered = new HashSet<string>();
        await LabSession.Eventually(async () =>
        {
            var said = await _lab.Xe(LabSession.On(a3, "pool-recover-slaves"));
            _recoveries.Add($"{DateTime.Now:HH:mm:ss.fff} xe pool-recover-slaves: {said.ReplaceLineEndings(" ")}");
            recovered.UnionWith(said.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            return recovered.Count == 2;
        }, TimeSpan.FromSeconds(240), "pool-recover-slaves to reach both hosts");
        await LabSession.Eventually(async () => await _lab.Xe(LabSession.On(a3, "host-list", "params=host-metrics-live", "--minimal")) == "true,true,true",
            TimeSpan.FromSeconds(120), "all three hosts live again");
        await LabSession.Eventually(async () => await VotersAsync(a3) == 3, TimeSpan.FromSeconds(60), "three voting etcd members");
        Assert.Equal(host3, await _lab.Xe(LabSession.On(a3, "pool-list", "params=master", "--minimal")));
        Assert.Equal(before, await DatabaseSummaryAsync(a3));

        // And the pool database takes writes again, through any host.
        var vm = (await _lab.Xe(LabSession.On(a1, "vm-list", "name-label=Corral test VM", "--minimal"))).Trim();
        await _lab.Xe(LabSession.On(a1, "vm-param-set", $"uuid={vm}", "name-description=survived a lost quorum"));
        Assert.Equal("survived a lost quorum", await _lab.Xe(LabSession.On(a3, "vm-param-get", $"uuid={vm}", "param-name=name-description")));
        // One database, not three: what each host reads is what the others wrote.
        await PoolDatabaseConsistency.AssertSameDataAsync(_lab);
    }

    /// <summary>What must not be lost: every VM, SR and VDI, by uuid.</summary>
    private async Task<string> DatabaseSummaryAsync(string address)
    {
        var parts = new List<string>();
        foreach (var command in new[] { "vm-list", "sr-list", "vdi-list", "template-list" })
        {
            var uuids = (await _lab.Xe(LabSession.On(address, command, "params=uuid", "--minimal"))).Split(',', StringSplitOptions.RemoveEmptyEntries);
            parts.Add(command + ":" + string.Join(',', uuids.Order(StringComparer.Ordinal)));
        }

        return string.Join('\n', parts);
    }

    /// <summary>Started, voting etcd members, as <c>etcdctl member list</c> shows them.</summary>
    private async Task<int> VotersAsync(string address)
    {
        var (code, output) = await _lab.Etcdctl(_lab.Addresses.ToList().IndexOf(address) + 1, "member", "list");
        return code != 0 ? -1 : output.Split('\n').Count(l => l.Contains(", started,", StringComparison.Ordinal) && l.TrimEnd().EndsWith("false", StringComparison.Ordinal));
    }
}
