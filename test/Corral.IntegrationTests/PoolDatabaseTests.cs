using Corral.Model;
using Corral.PoolDatabase;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>The pool database against a real etcd.</summary>
public sealed class PoolDatabaseTests : IAsyncLifetime
{
    private EtcdFixture _etcd = null!;

    public async Task InitializeAsync() => _etcd = await EtcdFixture.StartAsync();

    public async Task DisposeAsync() => await _etcd.DisposeAsync();

    [Fact]
    public async Task Objects_are_found_by_reference_uuid_and_class()
    {
        using var db = _etcd.CreateDatabase();
        var tx = new PoolTransaction();
        var vm = tx.Create(XenClasses.VMSchema, new Dictionary<string, object?> { ["name_label"] = "web", ["memory_static_max"] = 1L << 30 });
        await db.CommitAsync(tx, default);

        var read = await db.GetAsync(XenClasses.VM, vm.Ref, default);
        Assert.Equal("web", read.GetString("name_label"));
        Assert.Equal(1L << 30, read.GetInt("memory_static_max"));
        Assert.Equal(vm.Ref, (await db.FindByUuidAsync(XenClasses.VM, vm.Uuid, default))!.Ref);
        Assert.Null(await db.FindByUuidAsync(XenClasses.SR, vm.Uuid, default));
        Assert.Equal(XenClasses.VM, await db.FindClassOfAsync(vm.Ref, default));
        Assert.Single(await db.GetAllAsync(XenClasses.VM, default));
        var missing = await Assert.ThrowsAsync<XenApiException>(() => db.GetAsync(XenClasses.VM, OpaqueRef.New(), default));
        Assert.Equal(ErrorCodes.HandleInvalid, missing.Code);
    }

    [Fact]
    public async Task A_stale_writer_fails_instead_of_overwriting()
    {
        using var db = _etcd.CreateDatabase();
        var tx = new PoolTransaction();
        var vm = tx.Create(XenClasses.VMSchema);
        await db.CommitAsync(tx, default);
        var first = await db.GetAsync(XenClasses.VM, vm.Ref, default);
        var second = await db.GetAsync(XenClasses.VM, vm.Ref, default);

        var a = first.Clone();
        a["name_label"] = "a";
        var txA = new PoolTransaction();
        txA.Update(a);
        await db.CommitAsync(txA, default);

        var b = second.Clone();
        b["name_label"] = "b";
        var txB = new PoolTransaction();
        txB.Update(b);
        await Assert.ThrowsAsync<ConcurrentUpdateException>(() => db.CommitAsync(txB, default));
        Assert.Equal("a", (await db.GetAsync(XenClasses.VM, vm.Ref, default)).GetString("name_label"));
    }

    [Fact]
    public async Task Concurrent_updates_lose_nothing()
    {
        using var db = _etcd.CreateDatabase();
        var tx = new PoolTransaction();
        var vm = tx.Create(XenClasses.VMSchema);
        await db.CommitAsync(tx, default);

        // Many writers each add one to user_version: every increment must survive.
        await Task.WhenAll(Enumerable.Range(0, 40).Select(_ => Task.Run(() => db.UpdateAsync([(XenClasses.VM, vm.Ref)], (objs, t) =>
        {
            var v = objs[0].Clone();
            v["user_version"] = v.GetInt("user_version") + 1;
            t.Update(v);
        }, default))));
        Assert.Equal(41L, (await db.GetAsync(XenClasses.VM, vm.Ref, default)).GetInt("user_version"));
    }

    [Fact]
    public async Task The_change_stream_reports_add_mod_and_del_with_snapshots()
    {
        using var db = _etcd.CreateDatabase();
        var start = await db.GetRevisionAsync(default);
        var tx = new PoolTransaction();
        var sr = tx.Create(XenClasses.SRSchema, new Dictionary<string, object?> { ["name_label"] = "one" });
        await db.CommitAsync(tx, default);
        await db.UpdateAsync([(XenClasses.SR, sr.Ref)], (objs, t) =>
        {
            var s = objs[0].Clone();
            s["name_label"] = "two";
            t.Update(s);
        }, default);
        var del = new PoolTransaction();
        del.Delete(await db.GetAsync(XenClasses.SR, sr.Ref, default));
        await db.CommitAsync(del, default);

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var seen = new List<PoolChange>();
        await foreach (var batch in db.WatchAsync(start, cts.Token))
        {
            seen.AddRange(batch);
            if (seen.Count == 3)
            {
                break;
            }
        }

        Assert.Equal([ChangeKind.Add, ChangeKind.Mod, ChangeKind.Del], seen.Select(c => c.Kind));
        Assert.Equal(["one", "two", "two"], seen.Select(c => c.Object.GetString("name_label")));
        Assert.True(seen[0].Revision < seen[1].Revision);
    }

    [Fact]
    public async Task Host_metrics_live_follows_the_lease()
    {
        using var db = _etcd.CreateDatabase();
        var tx = new PoolTransaction();
        var metrics = tx.Create(XenClasses.HostMetricsSchema);
        await db.CommitAsync(tx, default);
        Assert.False((await db.GetAsync(XenClasses.HostMetrics, metrics.Ref, default)).GetBool("live"));

        var lease = await db.Leases.AcquireAsync(TimeSpan.FromSeconds(2), default);
        await db.Leases.PutAsync(lease, PoolKeys.LiveKey(metrics.Ref), "host", default);
        Assert.True((await db.GetAsync(XenClasses.HostMetrics, metrics.Ref, default)).GetBool("live"));
        Assert.True(lease.SafeUntil > MonotonicTime.Now);

        var before = await db.GetRevisionAsync(default);
        await lease.DisposeAsync();
        Assert.False((await db.GetAsync(XenClasses.HostMetrics, metrics.Ref, default)).GetBool("live"));

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await foreach (var batch in db.WatchAsync(before, cts.Token))
        {
            var change = Assert.Single(batch);
            Assert.Equal(metrics.Ref, change.Object.Ref);
            Assert.Equal(ChangeKind.Mod, change.Kind);
            Assert.False(change.Object.GetBool("live"));
            break;
        }
    }

    [Fact]
    public async Task A_claim_is_held_by_one_lease_at_a_time_and_freed_when_it_ends()
    {
        using var db = _etcd.CreateDatabase();
        var a = await db.Leases.AcquireAsync(TimeSpan.FromSeconds(2), default);
        var b = await db.Leases.AcquireAsync(TimeSpan.FromSeconds(2), default);
        Assert.True(await db.Leases.TryClaimAsync(a, PoolKeys.VmOwnerKey("OpaqueRef:x"), "host-a", default));
        Assert.False(await db.Leases.TryClaimAsync(b, PoolKeys.VmOwnerKey("OpaqueRef:x"), "host-b", default));
        await a.DisposeAsync();
        Assert.True(await db.Leases.TryClaimAsync(b, PoolKeys.VmOwnerKey("OpaqueRef:x"), "host-b", default));
        await b.DisposeAsync();
    }
}
