using System.Globalization;
using Xunit;

namespace Corral.EndToEndTests;

/// <summary>
/// The tests that pull plugs, freeze hosts and kill daemons (HA's, the seed's scenario, the web console's failover,
/// the pool's recovery from a lost quorum)
/// keep a lab apart from <see cref="SharedLab"/>; but they share one between them (a lab takes over a minute to bring
/// up on the 2-core machine), each test first putting the pool back as <c>./lab up</c> left it
/// (<see cref="FaultLab.ResetAsync"/>), whichever ran before it.
/// </summary>
[CollectionDefinition(Name)]
public sealed class FaultLabCollection : ICollectionFixture<FaultLab>
{
    public const string Name = "fault lab";
}

public sealed class FaultLab : IAsyncLifetime
{
    public const string Tools = "Corral test VM";
    public const string NoTools = "Corral test VM (no tools)";

    // A password found nowhere else, so that captures of the joins and recoveries can be searched for it (WireCapture).
    // The shared SR a directory every host sees (CORRAL_LAB_SR=file): these tests read the VMs' disks and their holders
    // as files (qemu-img check after a pulled plug, the processes holding an image); HA on NFS is NfsHaLabTests'.
    public LabSession Lab { get; } = new("fault", 4, new Dictionary<string, string>
    {
        ["CORRAL_LAB_PASSWORD"] = $"Wire-{Guid.NewGuid():N}",
        ["CORRAL_LAB_SR"] = "file",
    });

    public Task InitializeAsync() => Lab.UpAsync();

    public async Task DisposeAsync() => await Lab.DisposeAsync();

    /// <summary>
    /// The pool as the lab made it: every host live and enabled, HA off, lab-host1 the master, the VM without tools
    /// running on lab-host1, no VM but the lab's two, and the test VM halted (the HA tests start it, writing its
    /// sequence to disk) or, with <paramref name="bothVmsRunning"/>, running on lab-host1 too, as <c>./lab up</c> leaves
    /// it. Each step is taken only if a test before left the pool otherwise, through the commands an administrator
    /// would type.
    /// </summary>
    public async Task ResetAsync(bool bothVmsRunning = false)
    {
        for (var host = 1; host <= 3; host++)
        {
            // Off: its plug pulled, or powered off by a fence agent.
            var slot = host.ToString(CultureInfo.InvariantCulture);
            if (File.ReadAllText(Path.Combine(Lab.RunDirectory, $"host{host}", "power")).Trim() == "off")
            {
                await Lab.LabAsync("power-on", slot);
            }
            else
            {
                // Partitioned or frozen by a test that failed before it healed or thawed it (both do nothing otherwise).
                await Lab.LabAsync("heal", slot);
                await Lab.LabAsync("thaw", slot);
            }
        }

        await LabSession.Eventually(async () => (await Lab.TryXe("host-list", "params=host-metrics-live", "--minimal")).Output == "true,true,true",
            TimeSpan.FromSeconds(90), "every host live");
        // Whatever the last test did to the pool (a lost quorum, pulled plugs), its database is one, not one per host.
        await PoolDatabaseConsistency.AssertSameDataAsync(Lab);
        var pool = await Lab.Xe("pool-list", "--minimal");
        if (await Lab.Xe("pool-param-get", $"uuid={pool}", "param-name=ha-enabled") == "true")
        {
            await Lab.Xe("pool-ha-disable");
        }

        var host1 = await Lab.Xe("host-list", "name-label=lab-host1", "--minimal");
        foreach (var host in (await Lab.Xe("host-list", "enabled=false", "--minimal")).Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            await Lab.Xe("host-enable", $"uuid={host}");
        }

        if (await Lab.Xe("pool-list", "params=master", "--minimal") != host1)
        {
            await Lab.Xe("pool-designate-new-master", $"host-uuid={host1}");
            await LabSession.Eventually(async () => (await Lab.TryXe("pool-list", "params=master", "--minimal")).Output == host1,
                TimeSpan.FromSeconds(60), "lab-host1 to be the master again");
        }

        await RemoveOtherVmsAsync();
        var tools = await Lab.Xe("vm-list", $"name-label={Tools}", "--minimal");
        await Lab.Xe("vm-param-set", $"uuid={tools}", "ha-restart-priority=");
        if (bothVmsRunning)
        {
            await RunsOnHost1Async(Tools, host1);
        }
        else if (await Lab.Xe("vm-param-get", $"uuid={tools}", "param-name=power-state") != "halted")
        {
            await SettledAsync(tools);
            await Lab.Xe("vm-shutdown", $"uuid={tools}");
        }

        await RunsOnHost1Async(NoTools, host1);
    }

    /// <summary>
    /// Until no operation runs on the VM: HA, on when a test failed before turning it off, may be restarting it as the
    /// host it ran on comes back (the pool is put back only once it is done).
    /// </summary>
    private Task SettledAsync(string vm) => LabSession.Eventually(async () =>
        (await Lab.TryXe("vm-param-get", $"uuid={vm}", "param-name=current-operations")) is (0, ""),
        TimeSpan.FromSeconds(120), "the VM's operations to end");

    /// <summary>VMs a test made (the web console's "Made in the console"), removed with their disks.</summary>
    private async Task RemoveOtherVmsAsync()
    {
        foreach (var vm in (await Lab.Xe("vm-list", "is-control-domain=false", "is-a-snapshot=false", "--minimal")).Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            if (await Lab.Xe("vm-param-get", $"uuid={vm}", "param-name=name-label") is Tools or NoTools)
            {
                continue;
            }

            if (await Lab.Xe("vm-param-get", $"uuid={vm}", "param-name=power-state") != "halted")
            {
                await Lab.Xe("vm-shutdown", $"uuid={vm}", "--force");
            }

            await Lab.Xe("vm-uninstall", $"uuid={vm}", "--force");
        }
    }

    private async Task RunsOnHost1Async(string name, string host1)
    {
        var vm = await Lab.Xe("vm-list", $"name-label={name}", "--minimal");
        await Lab.Xe("vm-param-set", $"uuid={vm}", "ha-restart-priority=");
        await SettledAsync(vm);
        if (await Lab.Xe("vm-param-get", $"uuid={vm}", "param-name=power-state") != "running")
        {
            await Lab.Xe("vm-start", $"uuid={vm}", "on=lab-host1");
        }
        else if (await Lab.Xe("vm-param-get", $"uuid={vm}", "param-name=resident-on") != host1)
        {
            await Lab.Xe("vm-migrate", $"uuid={vm}", "host=lab-host1", "live=true");
        }

        var ip = (await Lab.Xe("vm-param-get", $"uuid={vm}", "param-name=xenstore-data", "param-key=vm-data/ip")).Split('/')[0];
        await LabSession.Eventually(() => LabSession.Ping(ip), TimeSpan.FromSeconds(90), $"{name} to answer on lab-host1");
    }
}
