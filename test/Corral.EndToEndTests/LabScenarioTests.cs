using System.Diagnostics;
using Xunit;
using Xunit.Abstractions;

namespace Corral.EndToEndTests;

/// <summary>
/// The seed's clumsy test, run through the lab exactly as a user would: three hosts in namespaces, both VMs on the
/// master, pull the plug on the master; a survivor becomes master unaided, the dead host shows host-metrics-live
/// false, and vm-reset-powerstate plus vm-start bring both VMs back on survivors, answering ping. On the lab the fault
/// tests share, put back first as <c>./lab up</c> leaves it.
/// </summary>
[Collection(FaultLabCollection.Name)]
public sealed class LabScenarioTests(FaultLab fault, ITestOutputHelper output)
{
    /// <summary>How long a start on a survivor may take: sanlock's wait for the dead host's lease to expire, and more.</summary>
    private static readonly TimeSpan StartLimit = TimeSpan.FromMinutes(4);

    private readonly LabSession _lab = fault.Lab;

    private Task<string> Xe(params string[] args) => _lab.Xe(args);

    private Task<(int Code, string Output)> RunAsync(string program, params string[] args) => _lab.RunAsync(program, args);

    private static string Repo => LabSession.Repo;

    private static Task<bool> Ping(string ip) => LabSession.Ping(ip);

    private static Task Eventually(Func<Task<bool>> probe, TimeSpan timeout, string what) => LabSession.Eventually(probe, timeout, what);

    [Fact]
    public async Task Pulling_the_plug_on_the_master_needs_no_rescue_of_the_pool_and_two_commands_per_vm()
    {
        await fault.ResetAsync(bothVmsRunning: true);
        var addresses = _lab.Addresses;
        Assert.Equal("true,true,true", await Xe("host-list", "params=host-metrics-live", "--minimal"));
        var master = await Xe("pool-list", "params=master", "--minimal");
        Assert.Equal(await Xe("host-list", "name-label=lab-host1", "--minimal"), master);
        var vmIps = (await Xe("vm-list", "params=name-label", "--minimal")).Split(',').Length;
        Assert.Equal(2, vmIps);

        var marks = _lab.AgentLogMarks();
        await RunAsync(Path.Combine(Repo, "lab"), "pull-plug", "1");
        // As an administrator would: xe at a survivor, over HTTPS (its certificate accepted when the lab came up).
        var survivor = new[] { "-s", addresses[1] };
        await Eventually(async () =>
        {
            var (c, m) = await RunAsync(Path.Combine(Repo, ".build/xe/xe"), [.. survivor, "pool-list", "params=master", "--minimal"]);
            return c == 0 && m.Length > 0 && m != master;
        }, TimeSpan.FromSeconds(90), "a new master");
        Assert.Equal("false", await Xe([.. survivor, "host-list", "name-label=lab-host1", "params=host-metrics-live", "--minimal"]));

        foreach (var vm in new[] { "Corral test VM", "Corral test VM (no tools)" })
        {
            // The disk the dead host's QEMU was writing is consistent (qcow2 metadata checked, no leaks or corruption).
            var vmUuid = await Xe([.. survivor, "vm-list", $"name-label={vm}", "--minimal"]);
            var vdi = await Xe([.. survivor, "vbd-list", $"vm-uuid={vmUuid}", "type=Disk", "params=vdi-uuid", "--minimal"]);
            var (checkCode, check) = await RunAsync("qemu-img", "check", Path.Combine(_lab.LabDirectory, "shared", vdi + ".qcow2"));
            Assert.True(checkCode == 0, $"qemu-img check of {vm}'s disk: {check}");

            await Xe([.. survivor, "vm-reset-powerstate", $"vm={vm}", "--force"]);
            await StartOrExplainAsync(survivor, vm, vmUuid, marks);
            var residentOn = await Xe([.. survivor, "vm-param-get", $"uuid={await Xe([.. survivor, "vm-list", $"name-label={vm}", "--minimal"])}", "param-name=resident-on"]);
            Assert.NotEqual(master, residentOn);
            Assert.Equal("true", await Xe([.. survivor, "host-param-get", $"uuid={residentOn}", "param-name=host-metrics-live"]));
        }

        var subnet = string.Join('.', (await Xe([.. survivor, "vm-param-get", $"uuid={await Xe([.. survivor, "vm-list", "name-label=Corral test VM", "--minimal"])}", "param-name=xenstore-data", "param-key=vm-data/ip"])).Split('/')[0].Split('.').Take(3));
        await Eventually(() => Ping($"{subnet}.10"), TimeSpan.FromSeconds(120), "the optimized VM to answer ping on a survivor");
        await Eventually(() => Ping($"{subnet}.11"), TimeSpan.FromSeconds(120), "the VM without tools to answer ping on a survivor");
    }

    /// <summary>
    /// vm-start on a survivor, within <see cref="StartLimit"/>; a start that does not finish (seen once in CI, not since)
    /// fails with what the agents said of the VM and of their operations since the plug was pulled.
    /// </summary>
    private async Task StartOrExplainAsync(string[] survivor, string vm, string vmUuid, Dictionary<string, long> marks)
    {
        var start = Xe([.. survivor, "vm-start", $"vm={vm}"]);
        if (await Task.WhenAny(start, Task.Delay(StartLimit)) != start)
        {
            output.WriteLine(_lab.AgentLogsSince(marks, line => line.Contains(vmUuid, StringComparison.Ordinal) || line.Contains(vm, StringComparison.Ordinal)
                || line.Contains("operation", StringComparison.OrdinalIgnoreCase) || line.Contains("lease", StringComparison.OrdinalIgnoreCase)
                || line.Contains("warn", StringComparison.OrdinalIgnoreCase) || line.Contains("fail", StringComparison.OrdinalIgnoreCase)));
            output.WriteLine((await _lab.RunAsync("ps", "-eo", "pid,etimes,args")).Output);
            Assert.Fail($"xe vm-start of {vm} on a survivor did not finish within {StartLimit.TotalMinutes} min (the agents' logs above)");
        }

        await start;
    }
}
