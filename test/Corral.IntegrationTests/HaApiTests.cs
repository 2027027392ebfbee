using Corral.Api;
using Corral.Api.Dispatch;
using Corral.Api.Sessions;
using Corral.Model;
using Corral.PoolDatabase;
using Corral.PoolDatabase.Etcd;
using Corral.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>
/// HA's configuration messages over a real etcd: enabling on a shared SR only (with a statefile VDI), once; the
/// failover plan's answers; admission control (HA_OPERATION_WOULD_BREAK_FAILOVER_PLAN unless overcommit is allowed,
/// and then <c>ha_overcommitted</c>); restart priorities checked; disabling.
/// </summary>
public sealed class HaApiTests : IAsyncLifetime
{
    private const long GiB = 1L << 30;
    private ApiFixture _fixture = null!;
    private IPoolDatabase _db = null!;
    private readonly List<ILease> _leases = [];
    private string _session = "";

    public async Task InitializeAsync()
    {
        _fixture = await ApiFixture.StartAsync(startHostedServices: false);
        _db = _fixture.Database;
        _session = await _fixture.LoginAsync();
    }

    public async Task DisposeAsync()
    {
        try
        {
            foreach (var lease in _leases)
            {
                await lease.DisposeAsync();
            }
        }
        finally
        {
            await _fixture.DisposeAsync();
        }
    }

    private Task<object?> Call(string method, params object?[] args) => _fixture.Call(method, args);

    private Task<object?> S(string method, params object?[] args) => Call(method, [_session, .. args]);

    private async Task<XenApiException> Fails(string method, params object?[] args) => await Assert.ThrowsAsync<XenApiException>(() => S(method, args));

    /// <summary>A pool of live hosts with the given memory, a shared SR plugged on all and a local SR on the first.</summary>
    private async Task<(string Pool, string[] Hosts, string Shared, string Local)> PoolAsync(params long[] memories)
    {
        var tx = new PoolTransaction();
        var hosts = new List<string>();
        var metrics = new List<string>();
        foreach (var memory in memories)
        {
            var m = tx.Create(XenClasses.HostMetricsSchema, new Dictionary<string, object?> { ["memory_total"] = memory, ["memory_free"] = memory });
            hosts.Add(tx.Create(XenClasses.HostSchema, new Dictionary<string, object?> { ["name_label"] = $"h{hosts.Count + 1}", ["metrics"] = m.Ref, ["enabled"] = true }).Ref);
            metrics.Add(m.Ref);
        }

        var pool = tx.Create(XenClasses.PoolSchema, new Dictionary<string, object?> { ["name_label"] = "pool", ["master"] = hosts[0] });
        var shared = tx.Create(XenClasses.SRSchema, new Dictionary<string, object?> { ["name_label"] = "Shared storage", ["type"] = "file", ["shared"] = true });
        var local = tx.Create(XenClasses.SRSchema, new Dictionary<string, object?> { ["name_label"] = "Local storage", ["type"] = "file" });
        foreach (var host in hosts)
        {
            tx.Create(XenClasses.PBDSchema, new Dictionary<string, object?> { ["host"] = host, ["SR"] = shared.Ref, ["currently_attached"] = true });
        }

        tx.Create(XenClasses.PBDSchema, new Dictionary<string, object?> { ["host"] = hosts[0], ["SR"] = local.Ref, ["currently_attached"] = true });
        await _db.CommitAsync(tx, default);
        for (var i = 0; i < hosts.Count; i++)
        {
            var lease = await _db.Leases.AcquireAsync(TimeSpan.FromSeconds(30), default);
            _leases.Add(lease);
            await _db.Leases.PutAsync(lease, PoolKeys.LiveKey(metrics[i]), hosts[i], default);
        }

        return (pool.Ref, [.. hosts], shared.Ref, local.Ref);
    }

    private async Task<string> RunningVmAsync(string host, long memory, string priority)
    {
        var tx = new PoolTransaction();
        var vm = tx.Create(XenClasses.VMSchema, new Dictionary<string, object?>
        {
            ["name_label"] = "vm", ["memory_static_max"] = memory, ["power_state"] = "Running", ["resident_on"] = host, ["ha_restart_priority"] = priority,
        });
        await _db.CommitAsync(tx, default);
        return vm.Ref;
    }

    [Fact]
    public async Task An_sr_can_host_the_statefile_when_shared_of_the_heartbeats_type_and_plugged_on_every_host()
    {
        var (_, hosts, shared, local) = await PoolAsync(4 * GiB, 4 * GiB);
        Assert.Null(await S("SR.assert_can_host_ha_statefile", shared));
        Assert.Equal([ErrorCodes.HaConstraintViolationSrNotShared, local], (await Fails("SR.assert_can_host_ha_statefile", local)).ErrorDescription);
        Assert.Equal([ErrorCodes.HandleInvalid, "SR", "OpaqueRef:nope"], (await Fails("SR.assert_can_host_ha_statefile", "OpaqueRef:nope")).ErrorDescription);

        var tx = new PoolTransaction();
        var iso = tx.Create(XenClasses.SRSchema, new Dictionary<string, object?> { ["name_label"] = "isos", ["type"] = "iso", ["shared"] = true });
        // An NFS or iSCSI SR holds the statefile as a volume (docs/ha.md).
        var nfs = tx.Create(XenClasses.SRSchema, new Dictionary<string, object?> { ["name_label"] = "nas", ["type"] = "nfs", ["shared"] = true });
        var san = tx.Create(XenClasses.SRSchema, new Dictionary<string, object?> { ["name_label"] = "san", ["type"] = "lvmoiscsi", ["shared"] = true });
        foreach (var host in hosts)
        {
            tx.Create(XenClasses.PBDSchema, new Dictionary<string, object?> { ["host"] = host, ["SR"] = nfs.Ref, ["currently_attached"] = true });
            tx.Create(XenClasses.PBDSchema, new Dictionary<string, object?> { ["host"] = host, ["SR"] = san.Ref, ["currently_attached"] = true });
        }

        var half = tx.Create(XenClasses.SRSchema, new Dictionary<string, object?> { ["name_label"] = "half", ["type"] = "file", ["shared"] = true });
        tx.Create(XenClasses.PBDSchema, new Dictionary<string, object?> { ["host"] = hosts[0], ["SR"] = half.Ref, ["currently_attached"] = true });
        tx.Create(XenClasses.PBDSchema, new Dictionary<string, object?> { ["host"] = hosts[1], ["SR"] = half.Ref, ["currently_attached"] = false });
        await _db.CommitAsync(tx, default);
        Assert.Equal([ErrorCodes.SrOperationNotSupported, iso.Ref], (await Fails("SR.assert_can_host_ha_statefile", iso.Ref)).ErrorDescription);
        Assert.Null(await S("SR.assert_can_host_ha_statefile", nfs.Ref));
        Assert.Null(await S("SR.assert_can_host_ha_statefile", san.Ref));
        // A host whose PBD is not plugged could never be heard through the statefile; pool.enable_ha checks the same.
        Assert.Equal([ErrorCodes.SrHasNoPbds, half.Ref], (await Fails("SR.assert_can_host_ha_statefile", half.Ref)).ErrorDescription);
        Assert.Equal([ErrorCodes.SrHasNoPbds, half.Ref], (await Fails("pool.enable_ha", new List<object?> { half.Ref }, new Dictionary<string, object?>())).ErrorDescription);
    }

    [Fact]
    public async Task Ha_is_enabled_on_a_shared_sr_plans_failover_and_refuses_what_would_break_the_plan()
    {
        var (pool, hosts, shared, local) = await PoolAsync(6 * GiB, 6 * GiB, 6 * GiB);
        // Each host offers 6 GiB less its reserve (256 MiB) to VMs.
        await RunningVmAsync(hosts[0], 2 * GiB, "restart");
        await RunningVmAsync(hosts[1], 2 * GiB, "restart");
        var big = await RunningVmAsync(hosts[2], 4 * GiB, "");

        Assert.Equal([ErrorCodes.HaConstraintViolationSrNotShared, local], (await Fails("pool.enable_ha", new List<object?> { local }, new Dictionary<string, object?>())).ErrorDescription);
        Assert.Equal(ErrorCodes.HandleInvalid, (await Fails("pool.enable_ha", new List<object?> { "OpaqueRef:nope" }, new Dictionary<string, object?>())).Code);
        Assert.Equal(ErrorCodes.HaNotEnabled, (await Fails("pool.disable_ha")).Code);
        await S("pool.enable_ha", new List<object?> { shared }, new Dictionary<string, object?>());
        Assert.True((bool)(await S("pool.get_ha_enabled", pool))!);
        var statefile = (string)((List<object?>)(await S("pool.get_ha_statefiles", pool))!).Single()!;
        Assert.Equal("ha_statefile", await S("VDI.get_type", statefile));
        // Each host's heartbeat slot, should the SR keep the statefile as a volume: the hosts' uuids in one fixed order.
        var uuids = new List<string>();
        foreach (var host in hosts)
        {
            uuids.Add((string)(await S("host.get_uuid", host))!);
        }

        Assert.Equal(string.Join(',', uuids.Order(StringComparer.Ordinal)),
            ((Dictionary<string, object?>)(await S("VDI.get_sm_config", statefile))!)["heartbeat-slots"]);
        Assert.Equal(shared, await S("VDI.get_SR", statefile));
        Assert.Equal(ErrorCodes.HaIsEnabled, (await Fails("pool.enable_ha", new List<object?> { shared }, new Dictionary<string, object?>())).Code);

        // One host lost: its 2 GiB protected VM fits on either survivor. Two lost: h1's and h2's VMs cannot both go to
        // h3 next to its 4 GiB VM.
        Assert.Equal(1L, await S("pool.ha_compute_max_host_failures_to_tolerate"));
        Assert.True((bool)(await S("pool.ha_failover_plan_exists", 1L))!);
        Assert.False((bool)(await S("pool.ha_failover_plan_exists", 2L))!);
        // Were the big VM protected too, no single failure would leave room for it.
        Assert.Equal(0L, await S("pool.ha_compute_hypothetical_max_host_failures_to_tolerate", new Dictionary<string, object?> { [big] = "restart" }));

        await S("pool.set_ha_host_failures_to_tolerate", pool, 1L);
        Assert.Equal(1L, await S("pool.get_ha_plan_exists_for", pool));
        Assert.Equal(ErrorCodes.HaOperationWouldBreakFailoverPlan, (await Fails("pool.set_ha_host_failures_to_tolerate", pool, 2L)).Code);
        Assert.Equal(ErrorCodes.HaOperationWouldBreakFailoverPlan, (await Fails("VM.set_ha_restart_priority", big, "restart")).Code);
        Assert.Equal("", await S("VM.get_ha_restart_priority", big));
        Assert.Equal(ErrorCodes.InvalidValue, (await Fails("VM.set_ha_restart_priority", big, "always")).Code);
        await S("VM.set_ha_restart_priority", big, "best-effort");
        await S("VM.set_order", big, 3L);
        await S("VM.set_start_delay", big, 10L);
        Assert.Equal(3L, await S("VM.get_order", big));
        Assert.Equal(ErrorCodes.InvalidValue, (await Fails("VM.set_start_delay", big, -1L)).Code);

        // Overcommit allowed: the operation goes through, and the pool says it is overcommitted.
        await S("pool.set_ha_allow_overcommit", pool, true);
        await S("VM.set_ha_restart_priority", big, "restart");
        Assert.True((bool)(await S("pool.get_ha_overcommitted", pool))!);
        Assert.Equal(0L, await S("pool.get_ha_plan_exists_for", pool));

        // Fence agents come from the hosts' power management, checked as it is set.
        Assert.Equal(ErrorCodes.InvalidValue, (await Fails("host.set_power_on_mode", hosts[1], "wake-on-lan", new Dictionary<string, object?>())).Code);
        Assert.Equal(ErrorCodes.InvalidValue, (await Fails("host.set_power_on_mode", hosts[1], "IPMI", new Dictionary<string, object?> { ["power_on_ip"] = "192.0.2.9" })).Code);
        await S("host.set_power_on_mode", hosts[1], "lab", new Dictionary<string, object?> { ["slot"] = "2" });
        Assert.Equal("lab", await S("host.get_power_on_mode", hosts[1]));

        await S("pool.disable_ha");
        Assert.False((bool)(await S("pool.get_ha_enabled", pool))!);
        Assert.Equal(ErrorCodes.HandleInvalid, (await Fails("VDI.get_type", statefile)).Code);
    }

    private static string? Entry(object? map, string key) => map switch
    {
        IReadOnlyDictionary<string, object?> d => d.TryGetValue(key, out var v) ? v as string : null,
        IReadOnlyDictionary<string, string> d => d.TryGetValue(key, out var v) ? v : null,
        _ => throw new InvalidOperationException($"not a map: {map?.GetType()}"),
    };

    [Fact]
    public async Task A_bmc_password_is_kept_in_a_secret_of_the_hosts_own()
    {
        var (_, hosts, _, _) = await PoolAsync(8 * GiB, 8 * GiB);
        var bmc = new Dictionary<string, object?> { ["power_on_ip"] = "192.0.2.9", ["power_on_user"] = "admin" };

        // A plain password (xe power-on-config:power_on_password=...) is never stored as given.
        await S("host.set_power_on_mode", hosts[1], "IPMI", new Dictionary<string, object?>(bmc) { ["power_on_password"] = "first" });
        var config = await S("host.get_power_on_config", hosts[1]);
        Assert.Null(Entry(config, "power_on_password"));
        var firstCopy = Entry(config, "power_on_password_secret")!;
        Assert.Equal("first", await S("secret.get_value", await S("secret.get_by_uuid", firstCopy)));

        // XenCenter's way: its own secret by uuid, which it destroys afterwards; the host keeps a copy, and the old one goes.
        var given = await S("secret.create", new Dictionary<string, object?> { ["value"] = "second" });
        var givenUuid = (string)(await S("secret.get_uuid", given))!;
        await S("host.set_power_on_mode", hosts[1], "IPMI", new Dictionary<string, object?>(bmc) { ["power_on_password_secret"] = givenUuid });
        await S("secret.destroy", given);
        var secondCopy = Entry(await S("host.get_power_on_config", hosts[1]), "power_on_password_secret")!;
        Assert.NotEqual(givenUuid, secondCopy);
        Assert.Equal("second", await S("secret.get_value", await S("secret.get_by_uuid", secondCopy)));
        Assert.Equal(ErrorCodes.UuidInvalid, (await Fails("secret.get_by_uuid", firstCopy)).Code);

        // A secret that does not exist, or no password at all, is refused; turning power management off drops the copy.
        Assert.Equal(ErrorCodes.UuidInvalid, (await Fails("host.set_power_on_mode", hosts[1], "IPMI",
            new Dictionary<string, object?>(bmc) { ["power_on_password_secret"] = Guid.NewGuid().ToString() })).Code);
        Assert.Equal(ErrorCodes.InvalidValue, (await Fails("host.set_power_on_mode", hosts[1], "IPMI", bmc)).Code);
        await S("host.set_power_on_mode", hosts[1], "", new Dictionary<string, object?>());
        Assert.Equal(ErrorCodes.UuidInvalid, (await Fails("secret.get_by_uuid", secondCopy)).Code);
    }
}
