using System.Globalization;
using Xunit;

namespace Corral.EndToEndTests;

/// <summary>
/// The HA tests pull plugs, freeze hosts and kill daemons, so they keep a lab apart from <see cref="SharedLab"/>; but
/// they share one between them (a lab takes over a minute to bring up on the 2-core machine), each test first putting
/// the pool back as <c>./lab up</c> left it (<see cref="HaLab.ResetAsync"/>), whichever ran before it.
/// </summary>
[CollectionDefinition(Name)]
public sealed class HaLabCollection : ICollectionFixture<HaLab>
{
    public const string Name = "ha lab";
}

public sealed class HaLab : IAsyncLifetime
{
    public const string Tools = "Corral test VM";
    public const string NoTools = "Corral test VM (no tools)";

    public LabSession Lab { get; } = new("ha", 4);

    public Task InitializeAsync() => Lab.UpAsync();

    public async Task DisposeAsync() => await Lab.DisposeAsync();

    /// <summary>
    /// The pool as the lab made it: every host live and enabled, HA off, lab-host1 the master, the VM without tools
    /// running on lab-host1 and the test VM halted (each test starts it, writing its sequence to disk). Each step is taken only if a test before left the pool otherwise, through the commands an
    /// administrator would type.
    /// </summary>
    public async Task ResetAsync()
    {
        for (var host = 1; host <= 3; host++)
        {
            // Off: its plug pulled, or powered off by a fence agent.
            if (File.ReadAllText(Path.Combine(Lab.RunDirectory, $"host{host}", "power")).Trim() == "off")
            {
                await Lab.LabAsync("power-on", host.ToString(CultureInfo.InvariantCulture));
            }
        }

        await LabSession.Eventually(async () => (await Lab.TryXe("host-list", "params=host-metrics-live", "--minimal")).Output == "true,true,true",
            TimeSpan.FromSeconds(90), "every host live");
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

        // The test VM halted (each test starts it itself, writing its sequence), the one without tools on lab-host1.
        var tools = await Lab.Xe("vm-list", $"name-label={Tools}", "--minimal");
        await Lab.Xe("vm-param-set", $"uuid={tools}", "ha-restart-priority=");
        if (await Lab.Xe("vm-param-get", $"uuid={tools}", "param-name=power-state") != "halted")
        {
            await Lab.Xe("vm-shutdown", $"uuid={tools}");
        }

        var noTools = await Lab.Xe("vm-list", $"name-label={NoTools}", "--minimal");
        await Lab.Xe("vm-param-set", $"uuid={noTools}", "ha-restart-priority=");
        if (await Lab.Xe("vm-param-get", $"uuid={noTools}", "param-name=power-state") != "running")
        {
            await Lab.Xe("vm-start", $"uuid={noTools}", "on=lab-host1");
        }
        else if (await Lab.Xe("vm-param-get", $"uuid={noTools}", "param-name=resident-on") != host1)
        {
            await Lab.Xe("vm-migrate", $"uuid={noTools}", "host=lab-host1", "live=true");
        }

        var ip = (await Lab.Xe("vm-param-get", $"uuid={noTools}", "param-name=xenstore-data", "param-key=vm-data/ip")).Split('/')[0];
        await LabSession.Eventually(() => LabSession.Ping(ip), TimeSpan.FromSeconds(90), $"{NoTools} to answer on lab-host1");
    }
}
