using Corral.Cli.Api;

namespace Corral.Cli.Tests;

/// <summary>Where xe connects (HTTPS on 443 unless --nossl), and the pool's certificates it learns over HTTPS.</summary>
public sealed class XeTransportTests : IDisposable
{
    private readonly string _home = Directory.CreateTempSubdirectory("corral-xe-transport-").FullName;

    public void Dispose() => Directory.Delete(_home, recursive: true);

    private static CannedPool PoolWithCertificates()
    {
        var pool = CannedPool.Standard();
        pool.Add("host", "OpaqueRef:h1", new() { ["uuid"] = "h-1", ["name_label"] = "lab-host1", ["address"] = "10.9.0.11" });
        pool.Add("host", "OpaqueRef:h2", new() { ["uuid"] = "h-2", ["name_label"] = "lab-host2", ["address"] = "10.9.0.12" });
        pool.Add("Certificate", "OpaqueRef:c1", new() { ["uuid"] = "c-1", ["type"] = "host", ["host"] = "OpaqueRef:h1", ["fingerprint"] = "AA:11" });
        pool.Add("Certificate", "OpaqueRef:c2", new() { ["uuid"] = "c-2", ["type"] = "host", ["host"] = "OpaqueRef:h2", ["fingerprint"] = "BB:22" });
        pool.Add("Certificate", "OpaqueRef:c3", new() { ["uuid"] = "c-3", ["type"] = "ca", ["host"] = "OpaqueRef:NULL", ["fingerprint"] = "CC:33" });
        return pool;
    }

    private async Task<(int Code, List<Uri> Endpoints)> RunAsync(CannedPool pool, params string[] args)
    {
        var endpoints = new List<Uri>();
        var app = new XeApplication(new StringWriter(), new StringWriter(), new StringReader(""), endpoint =>
        {
            endpoints.Add(endpoint);
            return pool;
        }, name => name == "HOME" ? _home : null);
        var code = await app.RunAsync(["-pw", "secret", .. args], CancellationToken.None);
        return (code, endpoints);
    }

    private KnownServers Store() => KnownServers.ForUser(name => name == "HOME" ? _home : null);

    [Theory]
    [InlineData(new string[0], "https://10.9.0.11/jsonrpc")]
    [InlineData(new[] { "-p", "8443" }, "https://10.9.0.11:8443/jsonrpc")]
    [InlineData(new[] { "--nossl" }, "http://10.9.0.11/jsonrpc")]
    [InlineData(new[] { "--nossl", "-p", "8080" }, "http://10.9.0.11:8080/jsonrpc")]
    public async Task Xe_uses_https_on_443_by_default_and_plain_http_on_80_with_nossl(string[] options, string expected)
    {
        var (code, endpoints) = await RunAsync(PoolWithCertificates(), ["-s", "10.9.0.11", .. options, "host-list", "--minimal"]);
        Assert.Equal(0, code);
        Assert.Equal(new Uri(expected), Assert.Single(endpoints));
    }

    [Fact]
    public async Task Over_https_xe_learns_the_pools_host_certificates_by_their_addresses()
    {
        var (code, _) = await RunAsync(PoolWithCertificates(), "-s", "10.9.0.11", "vm-list", "--minimal");
        Assert.Equal(0, code);
        Assert.Equal("AA:11", Store().Find("10.9.0.11", 443));
        Assert.Equal("BB:22", Store().Find("10.9.0.12", 443));
    }

    [Fact]
    public async Task Over_plain_http_nothing_is_learnt()
    {
        var (code, _) = await RunAsync(PoolWithCertificates(), "-s", "10.9.0.11", "--nossl", "vm-list", "--minimal");
        Assert.Equal(0, code);
        Assert.Null(Store().Find("10.9.0.12", 443));
        Assert.Null(Store().Find("10.9.0.12", 80));
    }
}
