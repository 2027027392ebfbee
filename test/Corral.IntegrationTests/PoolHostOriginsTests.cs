using Corral.Model;
using Corral.PoolDatabase;
using Corral.WebConsole.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>The web console's pages may call any host of the pool across origins, over HTTPS as over HTTP, and nobody else's.</summary>
public sealed class PoolHostOriginsTests : IAsyncLifetime
{
    private EtcdFixture _etcd = null!;

    public async Task InitializeAsync() => _etcd = await EtcdFixture.StartAsync();

    public async Task DisposeAsync() => await _etcd.DisposeAsync();

    [Fact]
    public async Task The_https_and_http_origins_of_the_pools_hosts_are_allowed()
    {
        using var database = _etcd.CreateDatabase();
        var tx = new PoolTransaction();
        tx.Create(XenClasses.HostSchema, new Dictionary<string, object?> { ["name_label"] = "h2", ["address"] = "10.78.0.12" });
        await database.CommitAsync(tx, default);
        var origins = new PoolHostOrigins(database, Options.Create(new WebConsoleOptions { OwnAddress = "10.78.0.11" }), NullLogger<PoolHostOrigins>.Instance);
        await origins.StartAsync(default);
        try
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            while (!origins.IsAllowed("https://10.78.0.12"))
            {
                Assert.True(DateTime.UtcNow < deadline, "the other host's https origin is not allowed");
                await Task.Delay(100);
            }

            Assert.True(origins.IsAllowed("https://10.78.0.11"));
            Assert.True(origins.IsAllowed("https://10.78.0.11:8443"));
            Assert.True(origins.IsAllowed("http://10.78.0.12"));
            Assert.False(origins.IsAllowed("https://10.78.0.13"));
            Assert.False(origins.IsAllowed("https://console.example"));
        }
        finally
        {
            await origins.StopAsync(default);
        }
    }
}
