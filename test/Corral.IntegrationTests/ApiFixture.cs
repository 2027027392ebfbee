using Corral.Api;
using Corral.Api.Dispatch;
using Corral.Api.Sessions;
using Corral.PoolDatabase;
using Corral.PoolDatabase.Etcd;
using Corral.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Corral.IntegrationTests;

/// <summary>
/// The XenAPI as the agent registers it (<c>AddXenApi</c>) over a real etcd of its own, called in process, with root's
/// password "pw". Stops what it started, etcd whatever happened before.
/// </summary>
public sealed class ApiFixture : IAsyncDisposable
{
    private readonly EtcdFixture _etcd;
    private readonly bool _hosted;

    private ApiFixture(EtcdFixture etcd, ServiceProvider services, bool hosted)
    {
        _etcd = etcd;
        Services = services;
        _hosted = hosted;
        Api = services.GetRequiredService<ApiDispatcher>();
        Database = services.GetRequiredService<IPoolDatabase>();
    }

    public ServiceProvider Services { get; }

    public ApiDispatcher Api { get; }

    public IPoolDatabase Database { get; }

    /// <param name="configure">More registrations (options, the host's ref...).</param>
    /// <param name="beforeStart">Runs once the services are built, before the hosted services start.</param>
    /// <param name="startHostedServices">Whether the hosted services (event hub, master-only services) run.</param>
    public static async Task<ApiFixture> StartAsync(Action<IServiceCollection>? configure = null, Action<IServiceProvider>? beforeStart = null,
        bool startHostedServices = true)
    {
        var etcd = await EtcdFixture.StartAsync();
        try
        {
            var services = new ServiceCollection();
            services.AddLogging(l => l.AddConsole().SetMinimumLevel(LogLevel.Warning));
            services.AddEtcdPoolDatabase(o => o.Endpoints = etcd.Endpoint);
            services.AddXenApi();
            // Every SR type the agent knows (an API decision may depend on the type's driver, as pool.enable_ha's does).
            services.AddSingleton(sp => new SrDrivers([new FileSrDriver(), new IsoSrDriver(), new Corral.Storage.Nfs.NfsSrDriver(),
                new Corral.Storage.Iscsi.IscsiSrDriver(sp.GetRequiredService<Corral.PoolDatabase.IPoolDatabase>)]));
            configure?.Invoke(services);
            var provider = services.BuildServiceProvider();
            beforeStart?.Invoke(provider);
            var fixture = new ApiFixture(etcd, provider, startHostedServices);
            if (startHostedServices)
            {
                foreach (var hosted in provider.GetServices<IHostedService>())
                {
                    await hosted.StartAsync(default);
                }
            }

            await provider.GetRequiredService<SessionService>().SetPasswordAsync("root", "pw", default);
            return fixture;
        }
        catch
        {
            await etcd.DisposeAsync();
            throw;
        }
    }

    public Task<object?> Call(string method, params object?[] args) => Api.InvokeAsync(method, args, "127.0.0.1", default);

    public async Task<string> LoginAsync() => (string)(await Call("session.login_with_password", "root", "pw", "1.0", "test"))!;

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (_hosted)
            {
                foreach (var hosted in Services.GetServices<IHostedService>())
                {
                    await hosted.StopAsync(default);
                }
            }

            await Services.DisposeAsync();
        }
        finally
        {
            // etcd is stopped whatever happened above, so no test leaves a process behind.
            await _etcd.DisposeAsync();
        }
    }
}
