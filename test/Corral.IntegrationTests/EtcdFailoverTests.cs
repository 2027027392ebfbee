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
    private readonly List<ProcessStartInfo> _starts = [];

    private static Process Start(ProcessStartInfo info)
    {
        var process = Process.Start(info)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

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

            _starts.Add(info);
            _members.Add((Start(info), data, $"https://127.0.0.1:{ports[i].Client}"));
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

    [Fact]
    public async Task A_connection_that_left_its_own_dead_member_returns_to_it_and_no_longer_depends_on_another_host()
    {
        using var db = Database(_members[0].ClientUrl);
        Assert.NotNull(await db.RefreshEndpointsAsync(CancellationToken.None));
        var lease = await db.Leases.AcquireAsync(TimeSpan.FromSeconds(4), CancellationToken.None);
        await db.Leases.PutAsync(lease, "/live/back", "here", CancellationToken.None);

        // Its own member dies: the connection moves to another one. The member is started again (as the agent's
        // supervisor does) and serves; the connection is told to return to it.
        _members[0].Process.Kill();
        await _members[0].Process.WaitForExitAsync();
        await WritesAsync(db, "/moved");
        _members[0] = (Start(_starts[0]), _members[0].Data, _members[0].ClientUrl);
        using (var own = Database(_members[0].ClientUrl))
        {
            await WritesAsync(own, "/own-back");
        }

        db.Endpoints.ReturnToPreferred();
        await WritesAsync(db, "/returned");

        // Each other member in turn goes silent, as a host whose plug is pulled (SIGSTOP: its connections stay open and
        // answer nothing, which a client notices only after its keepalive pings time out, past the lease's safe time).
        // The lease, kept through this host's own member again, stays safe throughout. m0 leads first: a silent leader
        // would hold every keepalive for an election, wherever the connection is (a loaded machine made that 3 s once),
        // and this test is about the connection, not elections.
        await MoveLeaderToAsync(0);
        foreach (var other in new[] { 1, 2 })
        {
            await Signal("-STOP", _members[other].Process.Id);
            var unsafeSamples = 0;
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed < TimeSpan.FromSeconds(6))
            {
                unsafeSamples += lease.SafeUntil > Corral.PoolDatabase.MonotonicTime.Now ? 0 : 1;
                await Task.Delay(50);
            }

            await Signal("-CONT", _members[other].Process.Id);
            Assert.True(unsafeSamples == 0, $"the lease was not safe for {unsafeSamples * 50} ms while m{other} was silent");
            await Task.Delay(2000);
        }

        Assert.False(lease.Lost.IsCancellationRequested);
        Assert.Equal("here", await db.Leases.GetValueAsync("/live/back", CancellationToken.None));
        await lease.DisposeAsync();
    }

    /// <summary>Writes through the connection, again while the cluster is electing a leader (up to 30 s).</summary>
    private static async Task WritesAsync(EtcdPoolDatabase db, string key)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            try
            {
                await db.Leases.PutDurableAsync(key, "1", CancellationToken.None);
                return;
            }
            catch (Exception) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(200);
            }
        }
    }

    /// <summary>Makes member <paramref name="index"/> the leader with etcdctl (move-leader, sent to the current leader).</summary>
    private async Task MoveLeaderToAsync(int index)
    {
        var status = await EtcdctlAsync(string.Join(',', _members.Select(m => m.ClientUrl)), "endpoint", "status", "-w", "json");
        using var json = System.Text.Json.JsonDocument.Parse(status);
        var members = json.RootElement.EnumerateArray().Select(e => (
            Url: e.GetProperty("Endpoint").GetString()!,
            Id: e.GetProperty("Status").GetProperty("header").GetProperty("member_id").GetUInt64(),
            Leader: e.GetProperty("Status").GetProperty("leader").GetUInt64())).ToList();
        var target = members.Single(m => m.Url == _members[index].ClientUrl);
        if (target.Leader != target.Id)
        {
            var leader = members.Single(m => m.Id == target.Leader);
            await EtcdctlAsync(leader.Url, "move-leader", target.Id.ToString("x", System.Globalization.CultureInfo.InvariantCulture));
        }
    }

    private async Task<string> EtcdctlAsync(string endpoints, params string[] arguments)
    {
        var info = new ProcessStartInfo("etcdctl") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "--endpoints", endpoints, "--cacert", _tls[0].CaCertificateFile, "--cert", _tls[0].CertificateFile, "--key", _tls[0].KeyFile }
                     .Concat(arguments))
        {
            info.ArgumentList.Add(a);
        }

        using var etcdctl = Process.Start(info)!;
        var output = etcdctl.StandardOutput.ReadToEndAsync();
        var error = etcdctl.StandardError.ReadToEndAsync();
        await etcdctl.WaitForExitAsync();
        Assert.True(etcdctl.ExitCode == 0, $"etcdctl {string.Join(' ', arguments)}: {await error}");
        return await output;
    }

    private static async Task Signal(string signal, int pid)
    {
        using var kill = Process.Start("kill", [signal, pid.ToString(System.Globalization.CultureInfo.InvariantCulture)])!;
        await kill.WaitForExitAsync();
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
