using Corral.Agent.HighAvailability;
using Corral.Api;
using Corral.Api.Dispatch;
using Corral.Api.Methods;
using Corral.Api.Pool;
using Corral.Api.Sessions;
using Corral.Model;
using Corral.PoolDatabase;
using Corral.PoolDatabase.Etcd;
using Corral.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>
/// The host messages clients call, over a real etcd and the dispatcher: <c>host.assert_can_evacuate</c> with xapi's
/// CANNOT_EVACUATE_HOST, the server's clocks, <c>host.disable</c> with HA's plan, and the checks
/// <c>host.shutdown</c>, <c>host.reboot</c>, <c>host.restart_agent</c> and <c>host.power_on</c> make before anything
/// happens (what happens after is the lab's to show).
/// </summary>
public sealed class HostMessageTests : IAsyncLifetime
{
    private const long GiB = 1L << 30;
    private readonly string _thisHost = OpaqueRef.New();
    private EtcdFixture _etcd = null!;
    private ServiceProvider _services = null!;
    private ApiDispatcher _api = null!;
    private IPoolDatabase _db = null!;
    private readonly List<ILease> _leases = [];
    private string _session = "";

    public async Task InitializeAsync()
    {
        _etcd = await EtcdFixture.StartAsync();
        var services = new ServiceCollection();
        services.AddLogging(l => l.AddConsole().SetMinimumLevel(LogLevel.Warning));
        services.AddEtcdPoolDatabase(o => o.Endpoints = _etcd.Endpoint);
        services.AddSingleton(SrDrivers.Default);
        services.AddXenApi(o => o.HostRef = _thisHost);
        services.AddOptions<HaOptions>();
        services.AddSingleton<FenceAgents>();
        services.AddSingleton<IHostPowerControl>(sp => sp.GetRequiredService<FenceAgents>());
        services.AddSingleton<IApiMethodProvider, HostPowerMethods>();
        _services = services.BuildServiceProvider();
        await _services.GetRequiredService<SessionService>().SetPasswordAsync("root", "pw", default);
        _api = _services.GetRequiredService<ApiDispatcher>();
        _db = _services.GetRequiredService<IPoolDatabase>();
        _session = (string)(await _api.InvokeAsync("session.login_with_password", ["root", "pw"], "127.0.0.1", default))!;
    }

    public async Task DisposeAsync()
    {
        try
        {
            foreach (var lease in _leases)
            {
                await lease.DisposeAsync();
            }

            await _services.DisposeAsync();
        }
        finally
        {
            await _etcd.DisposeAsync();
        }
    }

    private Task<object?> S(string method, params object?[] args) => _api.InvokeAsync(method, [_session, .. args], "127.0.0.1", default);

    private async Task<XenApiException> Fails(string method, params object?[] args) => await Assert.ThrowsAsync<XenApiException>(() => S(method, args));

    /// <summary>A pool whose hosts have the given memory; the first is the host these calls are made on.</summary>
    private async Task<(string Pool, string[] Hosts)> PoolAsync(params (long Memory, bool Live)[] hosts)
    {
        var tx = new PoolTransaction();
        var refs = new List<string>();
        var metrics = new List<string>();
        foreach (var (memory, _) in hosts)
        {
            var m = tx.Create(XenClasses.HostMetricsSchema, new Dictionary<string, object?> { ["memory_total"] = memory, ["memory_free"] = memory });
            refs.Add(tx.Create(XenClasses.HostSchema, new Dictionary<string, object?>
            {
                ["name_label"] = $"h{refs.Count + 1}", ["metrics"] = m.Ref, ["enabled"] = true, ["address"] = "127.0.0.1",
            }, refs.Count == 0 ? _thisHost : null).Ref);
            metrics.Add(m.Ref);
        }

        var pool = tx.Create(XenClasses.PoolSchema, new Dictionary<string, object?> { ["name_label"] = "pool", ["master"] = refs[0] });
        await _db.CommitAsync(tx, default);
        for (var i = 0; i < hosts.Length; i++)
        {
            if (hosts[i].Live)
            {
                var lease = await _db.Leases.AcquireAsync(TimeSpan.FromSeconds(30), default);
                _leases.Add(lease);
                await _db.Leases.PutAsync(lease, PoolKeys.LiveKey(metrics[i]), refs[i], default);
            }
        }

        return (pool.Ref, [.. refs]);
    }

    private async Task<string> RunningVmAsync(string host, long memory, string priority = "")
    {
        var tx = new PoolTransaction();
        var vm = tx.Create(XenClasses.VMSchema, new Dictionary<string, object?>
        {
            ["name_label"] = "vm", ["memory_static_max"] = memory, ["power_state"] = "Running", ["resident_on"] = host, ["ha_restart_priority"] = priority,
        });
        await _db.CommitAsync(tx, default);
        return vm.Ref;
    }

    private Task UpdateAsync(string className, string reference, Action<XenObject> change) =>
        _db.UpdateAsync([(className, reference)], (objs, tx) =>
        {
            var o = objs[0].Clone();
            change(o);
            tx.Update(o);
        }, default);

    [Fact]
    public async Task Assert_can_evacuate_names_each_vm_that_cannot_move_as_xapi_does()
    {
        var (_, hosts) = await PoolAsync((8 * GiB, true), (4 * GiB, true));
        var fits = await RunningVmAsync(hosts[0], 2 * GiB);
        Assert.Null(await S("host.assert_can_evacuate", hosts[0]));

        var tooBig = await RunningVmAsync(hosts[0], 6 * GiB);
        var error = await Fails("host.assert_can_evacuate", hosts[0]);
        Assert.Equal(ErrorCodes.CannotEvacuateHost, error.Code);
        var reasons = Assert.Single(error.Parameters).Split('|');
        Assert.StartsWith(ErrorCodes.HostNotEnoughFreeMemory + ",", Assert.Single(reasons));
        // The same VM, and the same reason, as host.get_vms_which_prevent_evacuation gives.
        var blockers = (Dictionary<string, object?>)(await S("host.get_vms_which_prevent_evacuation", hosts[0]))!;
        Assert.Equal([tooBig], blockers.Keys);
        Assert.Equal(reasons[0], string.Join(',', ((List<object?>)blockers[tooBig]!).Cast<string>()));
        Assert.DoesNotContain(fits, blockers.Keys);

        // With the other host disabled there is nowhere to go for either.
        await S("host.disable", hosts[1]);
        error = await Fails("host.assert_can_evacuate", hosts[0]);
        Assert.Equal(2, error.Parameters[0].Split('|').Length);
        Assert.All(error.Parameters[0].Split('|'), r => Assert.StartsWith(ErrorCodes.NoHostsAvailable, r));
        Assert.Equal(ErrorCodes.HandleInvalid, (await Fails("host.assert_can_evacuate", "OpaqueRef:nonsense")).Code);
    }

    [Fact]
    public async Task The_server_clocks_answer_utc_and_local_time_for_this_host()
    {
        var (_, hosts) = await PoolAsync((4 * GiB, true), (4 * GiB, false));
        var before = DateTime.UtcNow.AddSeconds(-1);
        var utc = (DateTime)(await S("host.get_servertime", hosts[0]))!;
        Assert.InRange(utc.ToUniversalTime(), before, DateTime.UtcNow.AddSeconds(1));
        var local = (DateTime)(await S("host.get_server_localtime", hosts[0]))!;
        Assert.Equal(DateTimeKind.Local, local.Kind);
        Assert.DoesNotContain("Z", XenDateTime.Format(local), StringComparison.Ordinal);

        // Another host is asked itself; one that is down cannot answer.
        Assert.Equal(ErrorCodes.HostOffline, (await Fails("host.get_servertime", hosts[1])).Code);
        Assert.Equal(ErrorCodes.HandleInvalid, (await Fails("host.get_servertime", "OpaqueRef:nonsense")).Code);
    }

    [Fact]
    public async Task Disabling_a_host_is_refused_when_it_would_break_has_failover_plan()
    {
        var (pool, hosts) = await PoolAsync((6 * GiB, true), (6 * GiB, true));
        await RunningVmAsync(hosts[0], 4 * GiB, "restart");
        await UpdateAsync(XenClasses.Pool, pool, p =>
        {
            p["ha_enabled"] = true;
            p["ha_host_failures_to_tolerate"] = 1L;
            p["ha_plan_exists_for"] = 1L;
        });

        // h2 is where the protected VM would restart: without it the plan is gone.
        Assert.Equal(ErrorCodes.HaOperationWouldBreakFailoverPlan, (await Fails("host.disable", hosts[1])).Code);
        Assert.True((await _db.GetAsync(XenClasses.Host, hosts[1], default)).GetBool("enabled"));
        // h1 runs the VM: if it failed, h2 still takes it.
        await S("host.disable", hosts[0]);

        // Overcommit allowed: nothing is refused.
        await S("host.enable", hosts[0]);
        await UpdateAsync(XenClasses.Pool, pool, p => p["ha_allow_overcommit"] = true);
        await S("host.disable", hosts[1]);
    }

    [Fact]
    public async Task Shutdown_reboot_and_restart_agent_check_the_host_first()
    {
        var (_, hosts) = await PoolAsync((4 * GiB, true), (4 * GiB, false));
        // Enabled: xapi wants it disabled (and evacuated) first.
        Assert.Equal(ErrorCodes.HostNotDisabled, (await Fails("host.shutdown", hosts[0])).Code);
        Assert.Equal(ErrorCodes.HostNotDisabled, (await Fails("host.reboot", hosts[0])).Code);
        // Down: nothing to shut down, and no agent to restart.
        Assert.Equal(ErrorCodes.HostOffline, (await Fails("host.shutdown", hosts[1])).Code);
        Assert.Equal(ErrorCodes.HostOffline, (await Fails("host.restart_agent", hosts[1])).Code);
        // Already going down.
        await S("host.disable", hosts[0]);
        await UpdateAsync(XenClasses.Host, hosts[0], h => h["current_operations"] = new Dictionary<string, object?> { ["OpaqueRef:t"] = "shutdown" });
        var busy = await Fails("host.reboot", hosts[0]);
        Assert.Equal(ErrorCodes.OtherOperationInProgress, busy.Code);
        Assert.Equal(["host", hosts[0], "shutdown", "OpaqueRef:t"], busy.Parameters);
    }

    [Fact]
    public async Task Power_on_needs_a_host_that_is_down_and_a_power_on_mode()
    {
        var (_, hosts) = await PoolAsync((4 * GiB, true), (4 * GiB, false));
        Assert.Equal(ErrorCodes.HostIsLive, (await Fails("host.power_on", hosts[0])).Code);
        Assert.Equal(ErrorCodes.HostPowerOnModeDisabled, (await Fails("host.power_on", hosts[1])).Code);

        // The lab's mode on an agent that has no lab script: the host does not power on, and says why.
        await S("host.set_power_on_mode", hosts[1], "lab", new Dictionary<string, object?> { ["slot"] = "2" });
        var error = await Fails("host.power_on", hosts[1]);
        Assert.Equal(ErrorCodes.InternalError, error.Code);
        Assert.Contains("LabScript", error.Parameters[0], StringComparison.Ordinal);
        Assert.Empty((Dictionary<string, object?>)(await _db.GetAsync(XenClasses.Host, hosts[1], default))["current_operations"]!);
    }

    [Fact]
    public async Task The_pools_license_state_is_its_edition_without_expiry()
    {
        var (pool, _) = await PoolAsync((4 * GiB, true));
        var state = (Dictionary<string, object?>)(await S("pool.get_license_state", pool))!;
        Assert.Equal("free", state["edition"]);
        Assert.Equal("never", state["expiry"]);
    }
}
