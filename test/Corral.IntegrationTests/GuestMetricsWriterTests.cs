using Corral.Agent.Hosting;
using Corral.Agent.Vms;
using Corral.Hypervisor;
using Corral.Model;
using Corral.PoolDatabase;
using Corral.PoolDatabase.Etcd;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>
/// The guest agents' reports written to VM_guest_metrics in a real pool database: created and linked on the first,
/// file systems and users in other, rewritten only when something but the free space and uptime changed, no longer
/// live when the agent falls silent, live again on its next report.
/// </summary>
public sealed class GuestMetricsWriterTests : IAsyncLifetime
{
    private static readonly DateTime Now = new(2026, 12, 6, 1, 0, 0, DateTimeKind.Utc);
    private readonly DirectoryInfo _state = Directory.CreateTempSubdirectory("corral-gm-");
    private EtcdFixture _etcd = null!;
    private EtcdPoolDatabase _database = null!;
    private HostIdentity _host = null!;
    private GuestMetricsWriter _writer = null!;

    public async Task InitializeAsync()
    {
        _etcd = await EtcdFixture.StartAsync();
        _database = _etcd.CreateDatabase();
        _host = HostIdentity.LoadOrCreate(_state.FullName);
        _writer = new GuestMetricsWriter(_database, _host, NullLogger<GuestMetricsWriter>.Instance);
    }

    public async Task DisposeAsync()
    {
        _database.Dispose();
        await _etcd.DisposeAsync();
        _state.Delete(recursive: true);
    }

    private static GuestAgentReport Report(long free, int uptimeSeconds, params string[] users) =>
        new("7.2.22", TimeSpan.FromSeconds(uptimeSeconds), new Dictionary<string, string> { ["name"] = "Debian" }, new Dictionary<string, string>(),
            new Dictionary<string, string> { ["virtio_blk"] = "1" }, Now.AddSeconds(uptimeSeconds), CanFreeze: false,
            [new GuestVolume("/", "ext4", "vda1", 1000, free)], users.Select((u, i) => new GuestUser(u, Now.AddMinutes(i))).ToList());

    private async Task<XenObject> MetricsAsync(string vm) =>
        await _database.GetAsync(XenClasses.VMGuestMetrics, (await _database.GetAsync(XenClasses.VM, vm, default)).Get(XenApi.VM.GuestMetrics), default);

    [Fact]
    public async Task Reports_land_in_the_vms_guest_metrics_only_when_they_change_and_silence_ends_liveness()
    {
        var tx = new PoolTransaction();
        var vm = tx.Create(XenClasses.VMSchema, new Dictionary<string, object?> { ["name_label"] = "gm", ["power_state"] = "Running", ["resident_on"] = _host.Ref }).Ref;
        await _database.CommitAsync(tx, default);

        await _writer.UpdateAsync(vm, Report(600, 10, "root"));
        var first = await MetricsAsync(vm);
        Assert.True(first.Get(XenApi.VMGuestMetrics.Live));
        Assert.Empty(first.Get(XenApi.VMGuestMetrics.Disks));
        var other = first.Get(XenApi.VMGuestMetrics.Other);
        Assert.Equal("/", other["data-volume-0-mount-point"]);
        Assert.Equal("600", other["data-volume-0-free"]);
        Assert.Equal("1", other["data-users"]);
        Assert.Equal("root", other["data-user-0"]);

        // Less free space and a longer uptime within the same minute: not written.
        await _writer.UpdateAsync(vm, Report(500, 40, "root"));
        Assert.Equal(first.ModRevision, (await MetricsAsync(vm)).ModRevision);

        // Someone logs in: written, with the free space as it is now.
        await _writer.UpdateAsync(vm, Report(500, 45, "root", "alice"));
        other = (await MetricsAsync(vm)).Get(XenApi.VMGuestMetrics.Other);
        Assert.Equal("2", other["data-users"]);
        Assert.Equal("alice", other["data-user-1"]);
        Assert.Equal("500", other["data-volume-0-free"]);

        // The agent falls silent, then answers again with the same report: live again at once.
        await _writer.MarkSilentAsync(vm);
        Assert.False((await MetricsAsync(vm)).Get(XenApi.VMGuestMetrics.Live));
        await _writer.UpdateAsync(vm, Report(500, 45, "root", "alice"));
        Assert.True((await MetricsAsync(vm)).Get(XenApi.VMGuestMetrics.Live));
    }
}
