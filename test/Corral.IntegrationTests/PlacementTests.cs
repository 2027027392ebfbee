using System.Globalization;
using Corral.Api.Methods;
using Corral.Model;
using Corral.PoolDatabase;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>
/// Where <c>VM.start</c> puts a VM when no host is given, against a real etcd: a live, enabled host with the most
/// free memory; the VM's affinity first when that host can take it; never a disabled or dead host.
/// </summary>
public sealed class PlacementTests : IAsyncLifetime
{
    private const long GiB = 1L << 30;
    private EtcdFixture _etcd = null!;
    private IPoolDatabase _db = null!;
    private readonly Dictionary<string, ILease> _leases = new(StringComparer.Ordinal); // by host ref

    public async Task InitializeAsync()
    {
        _etcd = await EtcdFixture.StartAsync();
        _db = _etcd.CreateDatabase();
    }

    public async Task DisposeAsync()
    {
        foreach (var lease in _leases.Values)
        {
            await lease.DisposeAsync();
        }

        (_db as IDisposable)?.Dispose();
        await _etcd.DisposeAsync();
    }

    private async Task<XenObject> HostAsync(string name, long memory, bool live = true, bool enabled = true, string build = "0.1.0.7")
    {
        var tx = new PoolTransaction();
        var metrics = tx.Create(XenClasses.HostMetricsSchema, new Dictionary<string, object?> { ["memory_total"] = memory, ["memory_free"] = memory });
        var host = tx.Create(XenClasses.HostSchema, new Dictionary<string, object?>
        {
            ["name_label"] = name, ["metrics"] = metrics.Ref, ["enabled"] = enabled,
            ["software_version"] = new Dictionary<string, object?> { [XenServerVersion.CorralVersionKey] = build + "+test" },
        });
        await _db.CommitAsync(tx, default);
        if (live)
        {
            var lease = await _db.Leases.AcquireAsync(TimeSpan.FromSeconds(30), default);
            _leases.Add(host.Ref, lease);
            await _db.Leases.PutAsync(lease, PoolKeys.LiveKey(metrics.Ref), host.Ref, default);
        }

        return await _db.GetAsync(XenClasses.Host, host.Ref, default);
    }

    private async Task<XenObject> VmAsync(long memory, string? affinity = null, string? runningOn = null)
    {
        var tx = new PoolTransaction();
        var vm = tx.Create(XenClasses.VMSchema, new Dictionary<string, object?>
        {
            ["name_label"] = "vm",
            ["memory_static_max"] = memory,
            ["affinity"] = affinity ?? OpaqueRef.Null,
            ["power_state"] = runningOn is null ? "Halted" : "Running",
            ["resident_on"] = runningOn ?? OpaqueRef.Null,
        });
        await _db.CommitAsync(tx, default);
        return await _db.GetAsync(XenClasses.VM, vm.Ref, default);
    }

    [Fact]
    public async Task During_a_rolling_upgrade_a_vm_starts_on_a_host_of_the_newest_build_and_ha_restarts_it_anywhere()
    {
        var upgraded = await HostAsync("upgraded", 4 * GiB, build: "0.1.0.8");
        var older = await HostAsync("older but roomier", 16 * GiB);
        var placement = new Placement(_db);
        var vm = await VmAsync(GiB);

        Assert.Equal(upgraded.Ref, (await placement.ChooseAsync(vm, default)).Ref);
        Assert.Equal(older.Ref, (await placement.ChooseAsync(vm, default, anyBuild: true)).Ref);

        // The only upgraded host disabled: no host may take it (xapi's answer), except for HA.
        await _db.UpdateAsync([(XenClasses.Host, upgraded.Ref)], (objs, tx) =>
        {
            var h = objs[0].Clone();
            h.Set(XenApi.Host.Enabled, false);
            tx.Update(h);
        }, default);
        Assert.Equal(ErrorCodes.NoHostsAvailable, (await Assert.ThrowsAsync<XenApiException>(() => placement.ChooseAsync(vm, default))).Code);
        Assert.Equal(older.Ref, (await placement.ChooseAsync(vm, default, anyBuild: true)).Ref);
    }

    [Fact]
    public async Task The_live_enabled_host_with_the_most_free_memory_is_chosen()
    {
        await HostAsync("small", 4 * GiB);
        var medium = await HostAsync("medium", 8 * GiB);
        await HostAsync("big but disabled", 16 * GiB, enabled: false);
        await HostAsync("biggest but dead", 32 * GiB, live: false);
        var placement = new Placement(_db);

        Assert.Equal(medium.Ref, (await placement.ChooseAsync(await VmAsync(GiB), default)).Ref);
    }

    [Fact]
    public async Task Running_vms_count_against_their_host()
    {
        var small = await HostAsync("small", 4 * GiB);
        var medium = await HostAsync("medium", 8 * GiB);
        await VmAsync(6 * GiB, runningOn: medium.Ref);
        var placement = new Placement(_db);

        Assert.Equal(small.Ref, (await placement.ChooseAsync(await VmAsync(GiB), default)).Ref);
    }

    [Fact]
    public async Task A_migrating_vm_counts_against_its_destination_until_it_has_left()
    {
        var source = await HostAsync("source", 8 * GiB);
        var destination = await HostAsync("destination", 8 * GiB);
        var migrating = await VmAsync(3 * GiB, runningOn: source.Ref);
        var placement = new Placement(_db);
        var before = await placement.FreeMemoryByHostAsync(default);

        var tx = new PoolTransaction();
        var scheduled = migrating.Clone();
        scheduled["scheduled_to_be_resident_on"] = destination.Ref;
        tx.Update(scheduled);
        await _db.CommitAsync(tx, default);
        var during = await placement.FreeMemoryByHostAsync(default);

        Assert.Equal(before[source.Ref], during[source.Ref]);
        Assert.Equal(before[destination.Ref] - (3 * GiB), during[destination.Ref]);
        // A second VM as large no longer fits on the destination while the first is on its way.
        var second = await VmAsync(6 * GiB);
        Assert.Equal(ErrorCodes.HostNotEnoughFreeMemory,
            (await Assert.ThrowsAsync<XenApiException>(() => placement.CheckHostAsync(second, destination, default))).Code);
    }

    [Fact]
    public async Task Affinity_is_honoured_when_its_host_can_take_the_vm_and_ignored_when_it_cannot()
    {
        var small = await HostAsync("small", 4 * GiB);
        var medium = await HostAsync("medium", 8 * GiB);
        var dead = await HostAsync("dead", 64 * GiB, live: false);
        var placement = new Placement(_db);

        Assert.Equal(small.Ref, (await placement.ChooseAsync(await VmAsync(GiB, affinity: small.Ref), default)).Ref);
        Assert.Equal(medium.Ref, (await placement.ChooseAsync(await VmAsync(GiB, affinity: dead.Ref), default)).Ref);
        // Home server too small for the VM: it goes where it fits.
        Assert.Equal(medium.Ref, (await placement.ChooseAsync(await VmAsync(5 * GiB, affinity: small.Ref), default)).Ref);
    }

    [Fact]
    public async Task A_vm_that_fits_nowhere_or_a_pool_with_no_usable_host_gets_a_xenapi_error()
    {
        var placement = new Placement(_db);
        var none = await Assert.ThrowsAsync<XenApiException>(async () => await placement.ChooseAsync(await VmAsync(GiB), default));
        Assert.Equal(ErrorCodes.NoHostsAvailable, none.Code);

        var disabled = await HostAsync("disabled", 8 * GiB, enabled: false);
        var dead = await HostAsync("dead", 8 * GiB, live: false);
        await HostAsync("small", 4 * GiB);
        var tooBig = await Assert.ThrowsAsync<XenApiException>(async () => await placement.ChooseAsync(await VmAsync(6 * GiB), default));
        Assert.Equal(ErrorCodes.HostNotEnoughFreeMemory, tooBig.Code);

        var vm = await VmAsync(GiB);
        Assert.Equal(ErrorCodes.HostDisabled, (await Assert.ThrowsAsync<XenApiException>(() => placement.CheckHostAsync(vm, disabled, default))).Code);
        Assert.Equal(ErrorCodes.HostOffline, (await Assert.ThrowsAsync<XenApiException>(() => placement.CheckHostAsync(vm, dead, default))).Code);
    }

    [Fact]
    public async Task A_host_whose_liveness_key_goes_is_no_longer_chosen()
    {
        var medium = await HostAsync("medium", 8 * GiB);
        var big = await HostAsync("big", 16 * GiB);
        var placement = new Placement(_db);
        var vm = await VmAsync(GiB);
        Assert.Equal(big.Ref, (await placement.ChooseAsync(vm, default)).Ref);

        // The host dies: its agent's lease goes (revoked here rather than left to expire), and with it the liveness key.
        var lease = _leases[big.Ref];
        _leases.Remove(big.Ref);
        await lease.DisposeAsync();
        Assert.False(await placement.IsLiveAsync(await _db.GetAsync(XenClasses.Host, big.Ref, default), default));
        Assert.Equal(medium.Ref, (await placement.ChooseAsync(vm, default)).Ref);
        Assert.Equal(ErrorCodes.HostOffline, (await Assert.ThrowsAsync<XenApiException>(() => placement.CheckHostAsync(vm, big, default))).Code);
    }

    [Fact]
    public async Task Affinity_to_a_disabled_host_is_ignored()
    {
        var disabled = await HostAsync("disabled", 16 * GiB, enabled: false);
        var small = await HostAsync("small", 4 * GiB);
        var placement = new Placement(_db);

        Assert.Equal(small.Ref, (await placement.ChooseAsync(await VmAsync(GiB, affinity: disabled.Ref), default)).Ref);
    }

    [Fact]
    public async Task A_host_given_explicitly_is_honoured_when_it_can_take_the_vm()
    {
        var small = await HostAsync("small", 4 * GiB);
        await HostAsync("big", 16 * GiB);
        var placement = new Placement(_db);
        var vm = await VmAsync(GiB);

        // Not the host placement would choose, but it is live, enabled and has room: VM.start_on may use it.
        await placement.CheckHostAsync(vm, small, default);

        // A VM it cannot hold is refused with what it needs and what the host has (4 GiB less the host's reserve).
        var tooBig = await VmAsync(6 * GiB);
        var error = await Assert.ThrowsAsync<XenApiException>(() => placement.CheckHostAsync(tooBig, small, default));
        Assert.Equal(ErrorCodes.HostNotEnoughFreeMemory, error.Code);
        Assert.Equal([(6 * GiB).ToString(CultureInfo.InvariantCulture), (4 * GiB - Placement.HostReserveBytes).ToString(CultureInfo.InvariantCulture)], error.Parameters);
    }

    [Fact]
    public async Task Not_enough_memory_reports_the_largest_room_left_in_the_pool()
    {
        await HostAsync("small", 4 * GiB);
        var medium = await HostAsync("medium", 8 * GiB);
        await HostAsync("big but dead", 32 * GiB, live: false);
        await VmAsync(2 * GiB, runningOn: medium.Ref);
        var placement = new Placement(_db);

        var error = await Assert.ThrowsAsync<XenApiException>(async () => await placement.ChooseAsync(await VmAsync(7 * GiB), default));
        Assert.Equal(ErrorCodes.HostNotEnoughFreeMemory, error.Code);
        Assert.Equal([(7 * GiB).ToString(CultureInfo.InvariantCulture), (6 * GiB - Placement.HostReserveBytes).ToString(CultureInfo.InvariantCulture)], error.Parameters);
    }

    /// <summary>A VM with one disk on an SR plugged on the given hosts only.</summary>
    private async Task<XenObject> VmWithDiskOnAsync(long memory, params XenObject[] pluggedOn)
    {
        var tx = new PoolTransaction();
        var sr = tx.Create(XenClasses.SRSchema, new Dictionary<string, object?> { ["name_label"] = "Local storage", ["type"] = "file" });
        foreach (var host in pluggedOn)
        {
            tx.Create(XenClasses.PBDSchema, new Dictionary<string, object?> { ["host"] = host.Ref, ["SR"] = sr.Ref, ["currently_attached"] = true });
        }

        var vdi = tx.Create(XenClasses.VDISchema, new Dictionary<string, object?> { ["SR"] = sr.Ref, ["location"] = "disk.qcow2" });
        var vm = tx.Create(XenClasses.VMSchema, new Dictionary<string, object?> { ["name_label"] = "vm", ["memory_static_max"] = memory, ["power_state"] = "Halted" });
        tx.Create(XenClasses.VBDSchema, new Dictionary<string, object?> { ["VM"] = vm.Ref, ["VDI"] = vdi.Ref, ["userdevice"] = "0", ["type"] = "Disk" });
        await _db.CommitAsync(tx, default);
        return await _db.GetAsync(XenClasses.VM, vm.Ref, default);
    }

    /// <summary>Hosts that have not joined the VMs' lease lockspace yet, as the agent's VM leases would say.</summary>
    private sealed class Joining(params string[] hostRefs) : IStartReadiness
    {
        public HashSet<string> Hosts { get; } = new(hostRefs, StringComparer.Ordinal);

        public Task<IReadOnlySet<string>> ReadyHostsAsync(XenObject vm, IReadOnlyList<string> hostRefs, CancellationToken cancellationToken) =>
            Task.FromResult<IReadOnlySet<string>>(hostRefs.Where(h => !Hosts.Contains(h)).ToHashSet(StringComparer.Ordinal));
    }

    [Fact]
    public async Task A_host_still_joining_the_lease_lockspace_is_passed_over_while_another_has_room()
    {
        await HostAsync("small", 4 * GiB);
        var medium = await HostAsync("medium", 8 * GiB);
        var rebooted = await HostAsync("just rebooted, empty", 16 * GiB);
        var joining = new Joining(rebooted.Ref);
        var placement = new Placement(_db, joining);

        // The emptiest host would wait for its lockspace: the one with the most room that would not is chosen.
        Assert.Equal(medium.Ref, (await placement.ChooseAsync(await VmAsync(GiB), default)).Ref);

        // Only the joining host has room: it is chosen all the same (the start waits there rather than failing).
        Assert.Equal(rebooted.Ref, (await placement.ChooseAsync(await VmAsync(10 * GiB), default)).Ref);

        // An affinity is honoured even there; once joined, the host is as good as any.
        Assert.Equal(rebooted.Ref, (await placement.ChooseAsync(await VmAsync(GiB, affinity: rebooted.Ref), default)).Ref);
        joining.Hosts.Clear();
        Assert.Equal(rebooted.Ref, (await placement.ChooseAsync(await VmAsync(GiB), default)).Ref);
    }

    [Fact]
    public async Task A_vm_whose_disk_is_on_a_hosts_local_sr_goes_to_that_host_only()
    {
        var small = await HostAsync("small", 4 * GiB);
        var big = await HostAsync("big", 16 * GiB);
        var placement = new Placement(_db);
        var vm = await VmWithDiskOnAsync(GiB, small);

        // The host with the most room cannot open the disk: the one that can is chosen.
        Assert.Equal(small.Ref, (await placement.ChooseAsync(vm, default)).Ref);
        var onBig = await Assert.ThrowsAsync<XenApiException>(() => placement.CheckHostAsync(vm, big, default));
        Assert.Equal(ErrorCodes.VmRequiresSr, onBig.Code);
        Assert.Equal(vm.Ref, onBig.Parameters[0]);

        // Its host disabled, no other host reaches the disk: VM_REQUIRES_SR names the VM and the SR.
        var tx = new PoolTransaction();
        var disabled = small.Clone();
        disabled["enabled"] = false;
        tx.Update(disabled);
        await _db.CommitAsync(tx, default);
        var nowhere = await Assert.ThrowsAsync<XenApiException>(() => placement.ChooseAsync(vm, default));
        Assert.Equal(ErrorCodes.VmRequiresSr, nowhere.Code);
        Assert.Equal(vm.Ref, nowhere.Parameters[0]);
    }

    [Fact]
    public async Task A_vm_goes_only_where_its_networks_card_is_attached_and_anywhere_on_an_internal_network()
    {
        var small = await HostAsync("small", 4 * GiB);
        var big = await HostAsync("big", 16 * GiB);
        var placement = new Placement(_db);
        var tx = new PoolTransaction();
        var wired = tx.Create(XenClasses.NetworkSchema, new Dictionary<string, object?> { ["bridge"] = "xenbr1" });
        var internalNetwork = tx.Create(XenClasses.NetworkSchema, new Dictionary<string, object?> { ["bridge"] = "corral0" });
        var smallCard = tx.Create(XenClasses.PIFSchema, new Dictionary<string, object?>
        {
            ["device"] = "eth1", ["host"] = small.Ref, ["network"] = wired.Ref, ["physical"] = true, ["VLAN"] = -1L, ["currently_attached"] = true,
        });
        tx.Create(XenClasses.PIFSchema, new Dictionary<string, object?>
        {
            ["device"] = "eth1", ["host"] = big.Ref, ["network"] = wired.Ref, ["physical"] = true, ["VLAN"] = -1L, ["currently_attached"] = false,
        });
        await _db.CommitAsync(tx, default);
        var vm = await VmAsync(GiB);
        var onInternal = await VmAsync(GiB);
        tx = new PoolTransaction();
        tx.Create(XenClasses.VIFSchema, new Dictionary<string, object?> { ["VM"] = vm.Ref, ["network"] = wired.Ref, ["device"] = "0" });
        tx.Create(XenClasses.VIFSchema, new Dictionary<string, object?> { ["VM"] = onInternal.Ref, ["network"] = internalNetwork.Ref, ["device"] = "0" });
        await _db.CommitAsync(tx, default);
        vm = await _db.GetAsync(XenClasses.VM, vm.Ref, default);
        onInternal = await _db.GetAsync(XenClasses.VM, onInternal.Ref, default);

        // big's card on the VM's network is detached: the VM goes to small, though big has more room; VM_REQUIRES_NETWORK on big.
        Assert.Equal(small.Ref, (await placement.ChooseAsync(vm, default)).Ref);
        var onBig = await Assert.ThrowsAsync<XenApiException>(() => placement.CheckHostAsync(vm, big, default));
        Assert.Equal((ErrorCodes.VmRequiresNetwork, vm.Ref, wired.Ref), (onBig.Code, onBig.Parameters[0], onBig.Parameters[1]));
        Assert.Equal(big.Ref, (await placement.ChooseAsync(onInternal, default)).Ref);

        // small's card detached too: nowhere.
        tx = new PoolTransaction();
        var detached = (await _db.GetAsync(XenClasses.PIF, smallCard.Ref, default)).Clone();
        detached.Set(XenApi.PIF.CurrentlyAttached, false);
        tx.Update(detached);
        await _db.CommitAsync(tx, default);
        var nowhere = await Assert.ThrowsAsync<XenApiException>(() => placement.ChooseAsync(vm, default));
        Assert.Equal(ErrorCodes.VmRequiresNetwork, nowhere.Code);
    }
}
