using Corral.Api.Methods;
using Corral.Model;
using Corral.PoolDatabase;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>
/// <c>host.compute_free_memory</c> and <c>host.compute_memory_overhead</c> over a real etcd, as xapi answers them (and
/// <c>xe host-param-get param-name=memory-free-computed</c> asks): the host's memory less what it keeps for itself and
/// what its VMs take, those running there and those on their way; never negative.
/// </summary>
public sealed class HostMemoryTests : IAsyncLifetime
{
    private const long GiB = 1L << 30;
    private ApiFixture _fixture = null!;
    private string _session = "";

    public async Task InitializeAsync()
    {
        _fixture = await ApiFixture.StartAsync();
        _session = await _fixture.LoginAsync();
    }

    public async Task DisposeAsync() => await _fixture.DisposeAsync();

    private async Task<string> HostAsync(long memory, long overhead)
    {
        var tx = new PoolTransaction();
        var metrics = tx.Create(XenClasses.HostMetricsSchema, new Dictionary<string, object?> { ["memory_total"] = memory, ["memory_free"] = memory });
        var host = tx.Create(XenClasses.HostSchema, new Dictionary<string, object?> { ["name_label"] = "h", ["metrics"] = metrics.Ref, ["memory_overhead"] = overhead });
        await _fixture.Database.CommitAsync(tx, default);
        return host.Ref;
    }

    private async Task VmAsync(long memory, string state, string residentOn, string scheduledOn)
    {
        var tx = new PoolTransaction();
        tx.Create(XenClasses.VMSchema, new Dictionary<string, object?>
        {
            ["name_label"] = "vm",
            ["memory_static_max"] = memory,
            ["power_state"] = state,
            ["resident_on"] = residentOn,
            ["scheduled_to_be_resident_on"] = scheduledOn,
        });
        await _fixture.Database.CommitAsync(tx, default);
    }

    private async Task<long> FreeAsync(string host) => (long)(await _fixture.Call("host.compute_free_memory", _session, host))!;

    [Fact]
    public async Task Free_memory_counts_the_hosts_own_share_and_its_running_and_arriving_vms()
    {
        var host = await HostAsync(8 * GiB, overhead: 64L << 20);
        var other = await HostAsync(8 * GiB, overhead: 0);
        Assert.Equal(8 * GiB - Placement.HostReserveBytes - (64L << 20), await FreeAsync(host));
        Assert.Equal(Placement.HostReserveBytes + (64L << 20), (long)(await _fixture.Call("host.compute_memory_overhead", _session, host))!);

        await VmAsync(2 * GiB, "Running", host, OpaqueRef.Null);
        await VmAsync(1 * GiB, "Halted", OpaqueRef.Null, host);
        await VmAsync(4 * GiB, "Halted", OpaqueRef.Null, OpaqueRef.Null);
        await VmAsync(1 * GiB, "Running", other, host);
        Assert.Equal(8 * GiB - Placement.HostReserveBytes - (64L << 20) - 4 * GiB, await FreeAsync(host));
        Assert.Equal(8 * GiB - Placement.HostReserveBytes - GiB, await FreeAsync(other));

        await VmAsync(16 * GiB, "Running", other, OpaqueRef.Null);
        Assert.Equal(0, await FreeAsync(other));

        var bad = await Assert.ThrowsAsync<XenApiException>(() => _fixture.Call("host.compute_free_memory", _session, "OpaqueRef:nope"));
        Assert.Equal(ErrorCodes.HandleInvalid, bad.Code);
    }
}
