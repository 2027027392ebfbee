using System.Text;
using Corral.Model;
using Corral.PoolDatabase;
using Corral.PoolDatabase.Etcd;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>
/// allowed_operations as derived state of the pool database, against a real etcd: under a key of its own, overlaid on
/// every read and in the change stream, never part of the object's revision guard.
/// </summary>
public sealed class AllowedOperationsKeyTests : IAsyncLifetime
{
    private EtcdFixture _etcd = null!;
    private EtcdPoolDatabase _db = null!;

    public async Task InitializeAsync()
    {
        _etcd = await EtcdFixture.StartAsync();
        _db = _etcd.CreateDatabase();
    }

    public async Task DisposeAsync()
    {
        _db.Dispose();
        await _etcd.DisposeAsync();
    }

    private async Task<XenObject> CreateVmAsync(string name = "web")
    {
        var tx = new PoolTransaction();
        var vm = tx.Create(XenClasses.VMSchema, new Dictionary<string, object?> { ["name_label"] = name });
        await _db.CommitAsync(tx, default);
        return await _db.GetAsync(XenClasses.VM, vm.Ref, default);
    }

    private static List<string> Allowed(XenObject obj) => obj.GetSet("allowed_operations").Order(StringComparer.Ordinal).ToList();

    [Fact]
    public async Task Every_read_shows_the_set_and_the_object_keeps_its_revision()
    {
        var vm = await CreateVmAsync();
        var other = await CreateVmAsync("db");
        Assert.Empty(Allowed(vm));

        var revision = await _db.SetAllowedOperationsAsync(XenClasses.VM, vm.Ref, ["start", "destroy"], await _db.GetRevisionAsync(default), default);
        Assert.NotNull(revision);
        var read = await _db.GetAsync(XenClasses.VM, vm.Ref, default);
        Assert.Equal(["destroy", "start"], Allowed(read));
        Assert.Equal(vm.ModRevision, read.ModRevision);
        Assert.Equal(["destroy", "start"], Allowed((await _db.FindByUuidAsync(XenClasses.VM, vm.Uuid, default))!));
        var all = await _db.GetAllAsync(XenClasses.VM, default);
        Assert.Equal(["destroy", "start"], Allowed(all.Single(o => o.Ref == vm.Ref)));
        Assert.Empty(Allowed(all.Single(o => o.Ref == other.Ref)));

        // A writer that read the VM before the set was written commits; what it sends as allowed_operations is dropped.
        var changed = vm.Clone();
        changed["name_label"] = "renamed";
        changed["allowed_operations"] = new List<object?> { "clone" };
        var tx = new PoolTransaction();
        tx.Update(changed);
        await _db.CommitAsync(tx, default);
        read = await _db.GetAsync(XenClasses.VM, vm.Ref, default);
        Assert.Equal("renamed", read.GetString("name_label"));
        Assert.Equal(["destroy", "start"], Allowed(read));
        Assert.DoesNotContain("allowed_operations", await _db.Leases.GetValueAsync(PoolKeys.Object(XenClasses.VM, vm.Ref), default), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_set_stored_in_an_object_written_before_is_replaced_by_the_key()
    {
        // As an object written when allowed_operations was one of its fields.
        var vm = await CreateVmAsync();
        var key = PoolKeys.Object(XenClasses.VM, vm.Ref);
        var old = (await _db.Leases.GetValueAsync(key, default))!.Replace("\"fields\":{", "\"fields\":{\"allowed_operations\":[\"start\"],", StringComparison.Ordinal);
        await _db.Leases.PutDurableAsync(key, old, default);
        Assert.Contains("allowed_operations", await _db.Leases.GetValueAsync(key, default), StringComparison.Ordinal);

        Assert.Empty(Allowed(await _db.GetAsync(XenClasses.VM, vm.Ref, default)));
        await _db.SetAllowedOperationsAsync(XenClasses.VM, vm.Ref, ["clone"], await _db.GetRevisionAsync(default), default);
        Assert.Equal(["clone"], Allowed(await _db.GetAsync(XenClasses.VM, vm.Ref, default)));
    }

    [Fact]
    public async Task A_set_computed_from_an_older_revision_never_replaces_a_newer_one()
    {
        var vm = await CreateVmAsync();
        Assert.NotNull(await _db.SetAllowedOperationsAsync(XenClasses.VM, vm.Ref, ["start"], 100, default));
        var (_, written) = await _db.Leases.GetWithRevisionAsync(PoolKeys.AllowedKey(XenClasses.VM, vm.Ref), default);

        Assert.Null(await _db.SetAllowedOperationsAsync(XenClasses.VM, vm.Ref, ["destroy"], 99, default));
        // The same set again is no write, whatever it was computed from.
        Assert.Null(await _db.SetAllowedOperationsAsync(XenClasses.VM, vm.Ref, ["start"], 200, default));
        Assert.Equal(written, (await _db.Leases.GetWithRevisionAsync(PoolKeys.AllowedKey(XenClasses.VM, vm.Ref), default)).Revision);
        Assert.Equal(["start"], Allowed(await _db.GetAsync(XenClasses.VM, vm.Ref, default)));

        Assert.NotNull(await _db.SetAllowedOperationsAsync(XenClasses.VM, vm.Ref, ["clone", "copy"], 100, default));
        Assert.Equal(["clone", "copy"], Allowed(await _db.GetAsync(XenClasses.VM, vm.Ref, default)));
    }

    [Fact]
    public async Task Deleting_an_object_deletes_its_set_and_no_set_outlives_its_object()
    {
        var vm = await CreateVmAsync();
        await _db.SetAllowedOperationsAsync(XenClasses.VM, vm.Ref, ["start"], 1, default);
        Assert.NotNull(await _db.Leases.GetValueAsync(PoolKeys.AllowedKey(XenClasses.VM, vm.Ref), default));

        var tx = new PoolTransaction();
        tx.Delete(await _db.GetAsync(XenClasses.VM, vm.Ref, default));
        await _db.CommitAsync(tx, default);
        Assert.Null(await _db.Leases.GetValueAsync(PoolKeys.AllowedKey(XenClasses.VM, vm.Ref), default));

        // A late write for the object that has gone makes no key.
        var late = await Assert.ThrowsAsync<XenApiException>(() => _db.SetAllowedOperationsAsync(XenClasses.VM, vm.Ref, ["start"], long.MaxValue, default));
        Assert.Equal(ErrorCodes.HandleInvalid, late.Code);
        Assert.Empty(await _db.Leases.GetPrefixAsync(PoolKeys.Allowed, default));
    }

    [Fact]
    public async Task A_change_of_the_set_is_a_mod_of_its_object_and_a_delete_only_the_objects_del()
    {
        var vm = await CreateVmAsync();
        var start = await _db.GetRevisionAsync(default);
        var written = await _db.SetAllowedOperationsAsync(XenClasses.VM, vm.Ref, ["start", "clone"], start, default);
        var mod = Assert.Single(await WatchUntilAsync(start, c => c.Object.Ref == vm.Ref));
        Assert.Equal(ChangeKind.Mod, mod.Kind);
        Assert.Equal(written, mod.Revision);
        Assert.Equal(DerivedFields.AllowedOperations, mod.DerivedField);
        Assert.Equal(["clone", "start"], Allowed(mod.Object));
        Assert.Equal(vm.ModRevision, mod.Object.ModRevision);
        Assert.Equal("web", mod.Object.GetString("name_label"));

        // Deleting the object deletes its set in the same transaction: one Del, nothing for the set's key.
        var tx = new PoolTransaction();
        tx.Delete(await _db.GetAsync(XenClasses.VM, vm.Ref, default));
        await _db.CommitAsync(tx, default);
        await CreateVmAsync("last");
        var rest = await WatchUntilAsync(written!.Value, c => c.Object.GetString("name_label") == "last");
        var del = Assert.Single(rest, c => c.Object.Ref == vm.Ref);
        Assert.Equal(ChangeKind.Del, del.Kind);
        Assert.Null(del.DerivedField);
    }

    /// <summary>The changes after <paramref name="after"/> up to the first that satisfies <paramref name="last"/>.</summary>
    private async Task<List<PoolChange>> WatchUntilAsync(long after, Func<PoolChange, bool> last)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var seen = new List<PoolChange>();
        await foreach (var batch in _db.WatchAsync(after, cts.Token))
        {
            seen.AddRange(batch);
            if (batch.Any(last))
            {
                return seen;
            }
        }

        return seen;
    }

    [Fact]
    public async Task Guarded_writers_of_an_object_never_lose_to_writes_of_its_set()
    {
        var vm = await CreateVmAsync();
        string[][] sets = [["start"], ["start", "clone"], ["destroy"]];
        using var stop = new CancellationTokenSource();
        var setter = Task.Run(async () =>
        {
            var writes = 0;
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                writes += await _db.SetAllowedOperationsAsync(XenClasses.VM, vm.Ref, sets[i % sets.Length], i, default) is null ? 0 : 1;
            }

            return writes;
        });

        // Read, change, commit once, as the ~60 writers that do not retry: not one may fail.
        for (var i = 0; i < 100; i++)
        {
            var current = (await _db.GetAsync(XenClasses.VM, vm.Ref, default)).Clone();
            await Task.Delay(1);
            current["other_config"] = new Dictionary<string, object?> { ["step"] = i.ToString(System.Globalization.CultureInfo.InvariantCulture) };
            var tx = new PoolTransaction();
            tx.Update(current);
            await _db.CommitAsync(tx, default);
        }

        await stop.CancelAsync();
        Assert.True(await setter > 10);
        Assert.Equal("99", (await _db.GetAsync(XenClasses.VM, vm.Ref, default)).GetStringMap("other_config")["step"]);
    }

    [Fact]
    public async Task The_keys_value_names_the_revision_it_was_computed_from()
    {
        var vm = await CreateVmAsync();
        await _db.SetAllowedOperationsAsync(XenClasses.VM, vm.Ref, ["start"], 42, default);
        var value = await _db.Leases.GetValueAsync(PoolKeys.AllowedKey(XenClasses.VM, vm.Ref), default);
        using var doc = System.Text.Json.JsonDocument.Parse(Encoding.UTF8.GetBytes(value!));
        Assert.Equal(42, doc.RootElement.GetProperty("source").GetInt64());
        Assert.Equal("start", doc.RootElement.GetProperty("operations")[0].GetString());
    }
}
