using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Corral.PoolDatabase.Etcd;
using Corral.PoolDatabase.Etcd.Tls;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>
/// A three-member etcd cluster on loopback, and a pool database configured with one member only, as an agent is with
/// its own: when that member dies, the connection moves to the others (learned from the member list) and the lease
/// held through it survives. On TLS as the agent runs its members: each with a certificate of one pool CA, client
/// certificates required on both ports; the connection presents its own and checks each member's as it moves.
/// </summary>
public sealed class EtcdFailoverTests : IAsyncLifetime
{
    private readonly List<(Process Process, string Data, string ClientUrl)> _members = [];
    private readonly string _certificates = Directory.CreateTempSubdirectory("corral-etcd-failover-tls-").FullName;
    private readonly List<EtcdTlsFiles> _tls = [];

    public async Task InitializeAsync()
    {
        var ports = Enumerable.Range(0, 3).Select(_ => (Client: FreePort(), Peer: FreePort())).ToList();
        var cluster = string.Join(',', ports.Select((p, i) => $"m{i}=https://127.0.0.1:{p.Peer}"));
        // One pool CA; each member's certificate signed by it for its own key, as a join gets it.
        var first = new EtcdTlsFiles(Path.Combine(_certificates, "m0"));
        first.CreatePool("m0", ["127.0.0.1"], TimeProvider.System);
        _tls.Add(first);
        using (var ca = first.LoadAuthority())
        {
            for (var i = 1; i < 3; i++)
            {
                var (key, request) = PoolCertificateAuthority.CreateSigningRequest($"m{i}");
                using var certificate = ca.Issue(request, $"m{i}", ["127.0.0.1"], TimeProvider.System);
                var files = new EtcdTlsFiles(Path.Combine(_certificates, $"m{i}"));
                files.Write(new PoolTlsMaterial(ca.CertificatePem, ca.KeyPem, certificate.ExportCertificatePem(), key));
                _tls.Add(files);
            }
        }

        for (var i = 0; i < 3; i++)
        {
            var data = Directory.CreateTempSubdirectory("corral-etcd-failover-").FullName;
            var info = new ProcessStartInfo("etcd") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in new[]
                     {
                         "--name", $"m{i}", "--data-dir", data, "--pre-vote",
                         "--listen-client-urls", $"https://127.0.0.1:{ports[i].Client}", "--advertise-client-urls", $"https://127.0.0.1:{ports[i].Client}",
                         "--listen-peer-urls", $"https://127.0.0.1:{ports[i].Peer}", "--initial-advertise-peer-urls", $"https://127.0.0.1:{ports[i].Peer}",
                         "--initial-cluster", cluster, "--initial-cluster-state", "new", "--initial-cluster-token", "corral-failover-test",
                     }.Concat(_tls[i].MemberArguments()))
            {
                info.ArgumentList.Add(a);
            }

            var process = Process.Start(info)!;
            process.OutputDataReceived += (_, _) => { };
            process.ErrorDataReceived += (_, _) => { };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            _members.Add((process, data, $"https://127.0.0.1:{ports[i].Client}"));
        }

        using var db = Database(string.Join(',', _members.Select(m => m.ClientUrl)));
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            try
            {
                await db.Leases.PutDurableAsync("/ready", "1", CancellationToken.None);
                break;
            }
            catch (Exception) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(200);
            }
        }

        // The cluster answers once two members agree; the third lists its client URL only once it has published it,
        // moments later. The test starts when every member is listed, as a pool's members are long before a failure.
        while (true)
        {
            using var probe = Database(_members[0].ClientUrl);
            if (await probe.RefreshEndpointsAsync(CancellationToken.None) is { Count: 3 } || DateTime.UtcNow > deadline)
            {
                return;
            }

            await Task.Delay(200);
        }
    }

    [Fact]
    public async Task A_lease_held_through_a_member_that_dies_survives_on_the_others()
    {
        using var db = Database(_members[0].ClientUrl);
        var endpoints = await db.RefreshEndpointsAsync(CancellationToken.None);
        Assert.NotNull(endpoints);
        Assert.Equal(_members[0].ClientUrl, endpoints[0]);
        Assert.Equal(_members.Select(m => m.ClientUrl).Order(), endpoints.Order());

        var lease = await db.Leases.AcquireAsync(TimeSpan.FromSeconds(5), CancellationToken.None);
        await db.Leases.PutAsync(lease, "/live/test", "here", CancellationToken.None);
        _members[0].Process.Kill();
        await _members[0].Process.WaitForExitAsync();

        // Twice the TTL: without the other members the lease would have been lost, and its key deleted by the cluster.
        await Task.Delay(TimeSpan.FromSeconds(10));
        Assert.False(lease.Lost.IsCancellationRequested);
        Assert.True(lease.SafeUntil > Corral.PoolDatabase.MonotonicTime.Now);
        Assert.Equal("here", await db.Leases.GetValueAsync("/live/test", CancellationToken.None));
        await db.Leases.PutDurableAsync("/after", "written", CancellationToken.None);
        await lease.DisposeAsync();
    }

    private EtcdPoolDatabase Database(string endpoints) =>
        new(Options.Create(new EtcdOptions { Endpoints = endpoints, RequestTimeout = TimeSpan.FromSeconds(3), CertificateDirectory = _tls[0].Directory }),
            NullLogger<EtcdPoolDatabase>.Instance, NullLoggerFactory.Instance);

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public async Task DisposeAsync()
    {
        foreach (var (process, data, _) in _members)
        {
            if (!process.HasExited)
            {
                process.Kill();
                await process.WaitForExitAsync();
            }

            process.Dispose();
            Directory.Delete(data, recursive: true);
        }

        Directory.Delete(_certificates, recursive: true);
    }
}
