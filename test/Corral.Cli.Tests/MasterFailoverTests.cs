using Corral.Api.Client;
using Corral.Cli.Api;
using Corral.Model;
using Xunit;

namespace Corral.Cli.Tests;

/// <summary>
/// xe pointed at a pool master that is gone: it tries the pool's other hosts it saw before, and the one that answers
/// (directly, or by naming the new master) takes the command. The lab's HA test does the same against real hosts.
/// </summary>
public sealed class MasterFailoverTests : IDisposable
{
    private readonly string _home = Directory.CreateTempSubdirectory("corral-xe-home-").FullName;

    public void Dispose() => Directory.Delete(_home, recursive: true);

    /// <summary>A host whose address answers nothing: every call fails to connect, as to a host without power.</summary>
    private sealed class Unreachable(string host) : IXenApiClient
    {
        public Task<object?> CallAsync(string method, IReadOnlyList<object?> parameters, CancellationToken cancellationToken) =>
            throw new XenApiTransportException("Error: Connection refused (calling connect )") { CouldNotConnect = true, Server = host };
    }

    /// <summary>A pool member that is not the master: it names the master it knows.</summary>
    private sealed class Slave(string master) : IXenApiClient
    {
        public Task<object?> CallAsync(string method, IReadOnlyList<object?> parameters, CancellationToken cancellationToken) =>
            throw new XenApiException(ErrorCodes.HostIsSlave, master);
    }

    private async Task<(int Code, string Out, string Err)> RunAsync(Func<string, IXenApiClient> hosts, params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var app = new XeApplication(stdout, stderr, new StringReader(""), endpoint => hosts(endpoint.Host), name => name == "HOME" ? _home : null);
        var code = await app.RunAsync(["-pw", "secret", .. args], CancellationToken.None);
        return (code, stdout.ToString(), stderr.ToString());
    }

    private static CannedPool PoolWithAddresses()
    {
        var pool = CannedPool.Standard();
        pool.Add("host", "OpaqueRef:h1", new() { ["uuid"] = "h-1", ["name_label"] = "lab-host1", ["address"] = "10.9.0.11" });
        pool.Add("host", "OpaqueRef:h2", new() { ["uuid"] = "h-2", ["name_label"] = "lab-host2", ["address"] = "10.9.0.12" });
        pool.Add("host", "OpaqueRef:h3", new() { ["uuid"] = "h-3", ["name_label"] = "lab-host3", ["address"] = "10.9.0.13" });
        return pool;
    }

    [Fact]
    public async Task A_command_remembers_the_pools_hosts_and_a_dead_master_is_then_passed_by()
    {
        var pool = PoolWithAddresses();
        var (code, _, err) = await RunAsync(_ => pool, "-s", "10.9.0.11", "host-list", "--minimal");
        Assert.Equal((0, ""), (code, err));
        Assert.Equal(["10.9.0.11", "10.9.0.12", "10.9.0.13"], new PoolMembersCache(Path.Combine(_home, ".cache", "corral", "xe-pools")).Read("10.9.0.11", 443));

        // lab-host1 loses power; lab-host2 still names it (no master elected yet); lab-host3 is the new master.
        var (failedOver, output, note) = await RunAsync(host => host switch
        {
            "10.9.0.11" => new Unreachable(host),
            "10.9.0.12" => new Slave("10.9.0.11"),
            _ => pool,
        }, "-s", "10.9.0.11", "host-list", "params=name-label", "--minimal");
        Assert.Equal(0, failedOver);
        Assert.Equal("lab-host1,lab-host2,lab-host3\n", output);
        Assert.Equal("Note: 10.9.0.11 does not answer; the command went to the pool master at 10.9.0.13\n", note);
    }

    [Fact]
    public async Task A_host_that_joined_after_the_first_command_is_remembered_by_the_next()
    {
        var pool = CannedPool.Standard();
        pool.Add("host", "OpaqueRef:h1", new() { ["uuid"] = "h-1", ["name_label"] = "lab-host1", ["address"] = "10.9.0.11" });
        var cache = new PoolMembersCache(Path.Combine(_home, ".cache", "corral", "xe-pools"));
        await RunAsync(_ => pool, "-s", "10.9.0.11", "host-list", "--minimal");
        Assert.Equal(["10.9.0.11"], cache.Read("10.9.0.11", 443));

        pool.Add("host", "OpaqueRef:h2", new() { ["uuid"] = "h-2", ["name_label"] = "lab-host2", ["address"] = "10.9.0.12" });
        await RunAsync(_ => pool, "-s", "10.9.0.11", "vm-list", "--minimal");
        Assert.Equal(["10.9.0.11", "10.9.0.12"], cache.Read("10.9.0.11", 443));
    }

    [Fact]
    public async Task A_live_host_that_names_a_dead_master_leads_to_another_member()
    {
        var pool = PoolWithAddresses();
        await RunAsync(_ => pool, "-s", "10.9.0.12", "host-list", "--minimal");

        // The configured host is alive but names the old master, which is gone; lab-host3 answers as master.
        var (code, _, note) = await RunAsync(host => host switch
        {
            "10.9.0.11" => new Unreachable(host),
            "10.9.0.12" => new Slave("10.9.0.11"),
            _ => pool,
        }, "-s", "10.9.0.12", "host-list", "--minimal");
        Assert.Equal(0, code);
        Assert.Equal("Note: 10.9.0.11 does not answer; the command went to the pool master at 10.9.0.13\n", note);
    }

    [Fact]
    public async Task With_no_host_answering_xe_says_it_could_not_connect()
    {
        var pool = PoolWithAddresses();
        await RunAsync(_ => pool, "-s", "10.9.0.11", "host-list", "--minimal");

        var (code, output, err) = await RunAsync(host => new Unreachable(host), "-s", "10.9.0.11", "host-list");
        Assert.Equal((1, "", "Error: Connection refused (calling connect )\n"), (code, output, err));
    }

    [Fact]
    public async Task Without_a_remembered_pool_a_dead_server_is_the_error_as_xe_prints_it()
    {
        var (code, output, err) = await RunAsync(host => new Unreachable(host), "-s", "10.9.0.11", "vm-list");
        Assert.Equal((1, "", "Error: Connection refused (calling connect )\n"), (code, output, err));
        Assert.False(Directory.Exists(Path.Combine(_home, ".cache")));
    }
}
