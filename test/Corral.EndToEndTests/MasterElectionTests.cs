using System.Diagnostics;
using Corral.IntegrationTests;
using Corral.Model;
using Xunit;

namespace Corral.EndToEndTests;

/// <summary>Two real agents on one etcd: one master, HOST_IS_SLAVE from the other, automatic takeover, designated handover.</summary>
[Trait("Lab", "single-host")]
public sealed class MasterElectionTests : IAsyncLifetime
{
    private EtcdFixture _etcd = null!;
    private string _root = null!;
    private AgentHost _first = null!;
    private AgentHost _second = null!;

    public async Task InitializeAsync()
    {
        _etcd = await EtcdFixture.StartAsync();
        _root = Directory.CreateTempSubdirectory("corral-election-").FullName;
        AgentHost Make(string name) => new(_etcd.Endpoint, Path.Combine(_root, name), Path.Combine(_root, name + "-run"), "unused0", "/nonexistent", Path.Combine(_root, "templates"), name);
        _first = Make("host-a");
        _second = Make("host-b");
        _first.Start();
        await WaitForLoginAsync(_first);
        _second.Start();
    }

    public async Task DisposeAsync()
    {
        try
        {
            await _first.DisposeAsync();
            await _second.DisposeAsync();
        }
        finally
        {
            await _etcd.DisposeAsync();
            Directory.Delete(_root, recursive: true);
        }
    }

    private static async Task<JsonRpcClient> WaitForLoginAsync(AgentHost agent)
    {
        var client = new JsonRpcClient(agent.Endpoint);
        var sw = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                await client.LoginAsync("root", AgentHost.Password);
                return client;
            }
            catch (Exception) when (sw.Elapsed < TimeSpan.FromSeconds(60))
            {
                await Task.Delay(200);
            }
        }
    }

    private static async Task<T> Eventually<T>(Func<Task<T?>> probe, TimeSpan timeout, string what)
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < timeout)
        {
            try
            {
                if (await probe() is { } value)
                {
                    return value;
                }
            }
            catch (XenApiException)
            {
            }
            catch (HttpRequestException)
            {
            }

            await Task.Delay(200);
        }

        throw new TimeoutException("timed out waiting for " + what);
    }

    private static async Task<string> HostNamed(JsonRpcClient api, string name) =>
        (await api.CallWithSessionAsync("host.get_by_name_label", name))[0].GetString()!;

    private static async Task<string> MasterOf(JsonRpcClient api)
    {
        var pool = (await api.CallWithSessionAsync("pool.get_all"))[0].GetString()!;
        return (await api.CallWithSessionAsync("pool.get_master", pool)).GetString()!;
    }

    [Fact]
    public async Task A_survivor_takes_over_when_the_master_dies_and_hands_back_when_designated()
    {
        using var onFirst = await WaitForLoginAsync(_first);
        var hostA = await HostNamed(onFirst, "host-a");
        var hostB = await Eventually(async () => (await onFirst.CallWithSessionAsync("host.get_by_name_label", "host-b")) is { ValueKind: System.Text.Json.JsonValueKind.Array } a && a.GetArrayLength() > 0 ? a[0].GetString() : null,
            TimeSpan.FromSeconds(60), "host-b to join");
        Assert.Equal(hostA, await MasterOf(onFirst));

        // The slave sends clients to the master, as XenServer's slaves do.
        var slave = new JsonRpcClient(_second.Endpoint);
        var redirect = await Eventually(async () =>
        {
            try
            {
                await slave.LoginAsync("root", AgentHost.Password);
                return null;
            }
            catch (XenApiException ex) when (ex.Code == ErrorCodes.HostIsSlave)
            {
                return ex;
            }
        }, TimeSpan.FromSeconds(30), "HOST_IS_SLAVE from host-b");
        Assert.Equal("127.0.0.1", redirect.Parameters[0]);

        // A session made on the master is good on the slave: host-b serves its own performance data to it.
        var hostBUuid = (await onFirst.CallWithSessionAsync("host.get_uuid", hostB)).GetString()!;
        using (var http = new HttpClient())
        {
            var start = DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 600;
            var updates = new Uri(_second.Endpoint, $"/rrd_updates?session_id={Uri.EscapeDataString(onFirst.Session)}&start={start}&host=true");
            await Eventually(async () => (await http.GetStringAsync(updates)).Contains($"AVERAGE:host:{hostBUuid}:memory_total_kib", StringComparison.Ordinal) ? (bool?)true : null,
                TimeSpan.FromSeconds(30), "host-b's performance data");
        }

        // Pull the plug on the master's agent: host-b becomes master with no command typed.
        var killed = Stopwatch.StartNew();
        await _first.KillAsync();
        using var onSecond = await Eventually(async () =>
        {
            var c = new JsonRpcClient(_second.Endpoint);
            await c.LoginAsync("root", AgentHost.Password);
            return c;
        }, TimeSpan.FromSeconds(30), "host-b to accept logins as master");
        Assert.Equal(hostB, await Eventually(async () => await MasterOf(onSecond) == hostB ? hostB : null, TimeSpan.FromSeconds(30), "pool.master to name host-b"));
        Assert.True(killed.Elapsed < TimeSpan.FromSeconds(20), $"takeover took {killed.Elapsed}");
        var metricsA = (await onSecond.CallWithSessionAsync("host.get_metrics", hostA)).GetString()!;
        Assert.False((await onSecond.CallWithSessionAsync("host_metrics.get_live", metricsA)).GetBoolean());

        // host-a comes back as a slave; a designated handover makes it master again.
        _first.Start();
        await Eventually(async () => (await onSecond.CallWithSessionAsync("host_metrics.get_live", metricsA)).GetBoolean() ? (bool?)true : null, TimeSpan.FromSeconds(60), "host-a live again");
        Assert.Equal(hostB, await MasterOf(onSecond));
        await onSecond.CallWithSessionAsync("pool.designate_new_master", hostA);
        Assert.Equal(hostA, await Eventually(async () => await MasterOf(onSecond) == hostA ? hostA : null, TimeSpan.FromSeconds(30), "pool.master to name host-a"));
    }
}
