using Microsoft.Extensions.Logging.Abstractions;
using Corral.Agent.Hosting;
using Corral.Agent.Operations;
using Corral.Agent.Storage;
using Corral.Agent.Vms;
using Corral.Api;
using Corral.Api.Dispatch;
using Corral.Api.Sessions;
using Corral.Hypervisor.Qemu;
using Corral.Model;
using Corral.Networking;
using Corral.PoolDatabase;
using Corral.PoolDatabase.Etcd;
using Corral.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>
/// The API over a real etcd with one host's agent behind it: the host recorded and live (its liveness key on a lease),
/// and its operation worker running the agent's own storage handlers, so that calls which run on a host (SR.create,
/// PBD.plug, SR.probe...) really run. No QEMU is started.
/// </summary>
public sealed class AgentFixture : IAsyncLifetime
{
    private readonly List<ILease> _leases = [];
    private EtcdFixture _etcd = null!;
    private ServiceProvider _services = null!;
    private ApiDispatcher _api = null!;

    public string Root { get; } = Directory.CreateTempSubdirectory("corral-agent-it-").FullName;

    public IPoolDatabase Database { get; private set; } = null!;

    public HostIdentity Host { get; private set; } = null!;

    public string Session { get; private set; } = "";

    public async Task InitializeAsync()
    {
        _etcd = await EtcdFixture.StartAsync();
        var state = Path.Combine(Root, "state");
        Host = HostIdentity.LoadOrCreate(state);
        var shares = new Corral.Storage.Smb.SmbNetFsMounts(Path.Combine(state, "sr-mount"), NullLogger<Corral.Storage.Smb.SmbNetFsMounts>.Instance);
        var services = TestAgentServices.Create(Root, state, Host, o => o.Endpoints = _etcd.Endpoint,
            new SrDrivers([new FileSrDriver(), new IsoSrDriver(shares, new Corral.Storage.Nfs.NfsIsoLibraries()), new Corral.Storage.Nfs.NfsSrDriver(), new Corral.Storage.Iscsi.IscsiSrDriver(() => Database)]));
        services.AddSingleton<IShareMounts>(shares); // the one the ISO driver reads through
        services.AddSingleton<SrCatalog>();
        services.AddSingleton<IHostOperationHandler, StorageOperationHandler>();
        services.AddSingleton<IHostOperationHandler, SrConnectionHandler>();
        // The VM leases PBD.unplug releases (off, as the agent's default: LeaseReleaseTests turns them on for itself).
        services.AddSingleton<Corral.Agent.Membership.AgentLifecycle>();
        services.AddSingleton<HostRegistration>();
        services.AddSingleton<MigrationTlsIdentity>();
        services.AddSingleton<SharedSrPlugs>();
        services.AddSingleton<HostLiveness>();
        services.AddVmLeases(new Microsoft.Extensions.Configuration.ConfigurationBuilder().Build());
        services.AddSingleton<IHostOperationHandler, DeviceHotplugHandler>();
        services.AddSingleton<SnapshotVolumes>();
        services.AddSingleton<RevertSteps>();
        services.AddSingleton<IHostOperationHandler, SnapshotHandler>();
        services.AddHostedService<HostOperationWorker>();
        _services = services.BuildServiceProvider();
        Database = _services.GetRequiredService<IPoolDatabase>();
        await RecordHostAsync();
        foreach (var hosted in _services.GetServices<IHostedService>())
        {
            await hosted.StartAsync(default);
        }

        await _services.GetRequiredService<SessionService>().SetPasswordAsync("root", "pw", default);
        _api = _services.GetRequiredService<ApiDispatcher>();
        Session = (string)(await _api.InvokeAsync("session.login_with_password", ["root", "pw", "1.0", "test"], "127.0.0.1", default))!;
    }

    /// <summary>The pool, this host (live) and a second host that is recorded but has no agent.</summary>
    private async Task RecordHostAsync()
    {
        var tx = new PoolTransaction();
        tx.Create(XenClasses.HostMetricsSchema, new Dictionary<string, object?> { ["memory_total"] = 8L << 30 }, Host.MetricsRef);
        tx.Create(XenClasses.HostSchema, new Dictionary<string, object?> { ["uuid"] = Host.Uuid, ["name_label"] = "h1", ["metrics"] = Host.MetricsRef, ["enabled"] = true }, Host.Ref);
        var otherMetrics = tx.Create(XenClasses.HostMetricsSchema);
        OtherHost = tx.Create(XenClasses.HostSchema, new Dictionary<string, object?> { ["name_label"] = "h2", ["metrics"] = otherMetrics.Ref, ["enabled"] = true }).Ref;
        tx.Create(XenClasses.PoolSchema, new Dictionary<string, object?> { ["name_label"] = "pool", ["master"] = Host.Ref });
        await Database.CommitAsync(tx, default);
        var lease = await Database.Leases.AcquireAsync(TimeSpan.FromSeconds(30), default);
        _leases.Add(lease);
        await Database.Leases.PutAsync(lease, PoolKeys.LiveKey(Host.MetricsRef), Host.Ref, default);
    }

    public IServiceProvider Services => _services;

    /// <summary>A host of the pool without an agent (not live).</summary>
    public string OtherHost { get; private set; } = "";

    public Task<object?> S(string method, params object?[] args) => _api.InvokeAsync(method, [Session, .. args], "127.0.0.1", default);

    public async Task<XenApiException> Fails(string method, params object?[] args) => await Assert.ThrowsAsync<XenApiException>(() => S(method, args));

    public async Task DisposeAsync()
    {
        try
        {
            foreach (var hosted in _services.GetServices<IHostedService>())
            {
                await hosted.StopAsync(default);
            }

            foreach (var lease in _leases)
            {
                await lease.DisposeAsync();
            }

            await _services.DisposeAsync();
        }
        finally
        {
            await _etcd.DisposeAsync();
            Directory.Delete(Root, recursive: true);
        }
    }
}
