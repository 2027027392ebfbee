using Corral.Cli.Records;

namespace Corral.Cli.Tests;

public class FilterTests
{
    private static async Task<IEnumerable<string>> SelectAsync(string cls, string apiClass, params (string Key, string Value)[] filters)
    {
        var pool = CannedPool.Standard();
        var cache = pool.Cache();
        var engine = new RecordEngine(cache, null);
        var all = await cache.AllAsync(apiClass, CancellationToken.None);
        var selected = await engine.FilterAsync(XeClasses.Get(cls), all, filters.Select(f => new KeyValuePair<string, string>(f.Key, f.Value)), CancellationToken.None);
        return selected.Select(r => r.Uuid);
    }

    [Fact]
    public async Task A_filter_compares_the_printed_value_exactly()
    {
        Assert.Equal(["v-1"], await SelectAsync("vm", "VM", ("is-a-template", "false"), ("power-state", "running")));
        Assert.Empty(await SelectAsync("vm", "VM", ("power-state", "Running")));
        Assert.Equal(["v-1"], await SelectAsync("vm", "VM", ("resident-on", "h-1")));
        Assert.Equal(["h-1"], await SelectAsync("host", "host", ("host-metrics-live", "true")));
    }

    [Fact]
    public async Task Map_filters_take_the_colon_or_the_old_dash_syntax()
    {
        Assert.Equal(["v-1"], await SelectAsync("vm", "VM", ("xenstore-data:vm-data/ip", "10.0.0.5/24")));
        Assert.Equal(["v-1"], await SelectAsync("vm", "VM", ("xenstore-data-vm-data/ip", "10.0.0.5/24")));
        Assert.Empty(await SelectAsync("vm", "VM", ("xenstore-data:vm-data/ip", "10.0.0.6/24")));
        Assert.Equal(["v-1"], await SelectAsync("vm", "VM", ("networks:0/ip", "10.0.0.5")));
    }

    [Fact]
    public async Task Set_filters_use_contains()
    {
        Assert.Equal(["v-1"], await SelectAsync("vm", "VM", ("tags:contains", "a")));
        var ex = await Assert.ThrowsAsync<XeFailure>(() => SelectAsync("vm", "VM", ("tags:has", "a")));
        Assert.Equal("Error: Invalid syntax for set filtering (should be set-param:contains=key)", ex.Render());
    }

    [Fact]
    public async Task Unknown_fields_and_non_maps_are_xe_errors()
    {
        Assert.Equal("Error: Unknown field 'foo'", (await Assert.ThrowsAsync<XeFailure>(() => SelectAsync("vm", "VM", ("foo", "bar")))).Render());
        Assert.Equal("Error: Unknown field 'vm'", (await Assert.ThrowsAsync<XeFailure>(() => SelectAsync("vm", "VM", ("vm", "web")))).Render());
        Assert.Equal("Error: Field 'name-label' is not a set or map",
            (await Assert.ThrowsAsync<XeFailure>(() => SelectAsync("vm", "VM", ("name-label:x", "y")))).Render());
    }

    [Fact]
    public async Task Once_nothing_is_left_later_filters_are_not_even_checked()
    {
        Assert.Empty(await SelectAsync("vm", "VM", ("name-label", "nobody"), ("foo", "bar")));
    }

    [Fact]
    public async Task Mac_addresses_match_in_any_case()
    {
        Assert.Equal(["i-1"], await SelectAsync("vif", "VIF", ("MAC", "02:00:00:00:00:01".ToUpperInvariant())));
    }
}
