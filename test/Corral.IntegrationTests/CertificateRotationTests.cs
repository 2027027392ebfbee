using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Corral.PoolDatabase.Etcd.Tls;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>
/// A host's certificate replaced while its etcd member runs, and the old one revoked, with real etcd 3.4 members: the
/// member serves the new certificate from its next handshake without a restart, Debian's etcdctl with the old
/// certificate is refused once the pool's revocation list names it, and the new one is served.
/// </summary>
public sealed class CertificateRotationTests : IAsyncLifetime
{
    private readonly string _root = Directory.CreateTempSubdirectory("corral-cert-rotation-").FullName;
    private readonly List<TlsMember> _hosts = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var host in _hosts)
        {
            await host.DisposeAsync();
        }

        Directory.Delete(_root, recursive: true);
    }

    [Fact]
    public async Task A_refreshed_certificate_is_served_without_a_restart_and_the_revoked_one_is_refused()
    {
        var host = await TlsMember.StartNewPoolAsync(_root, "rotate-host1");
        _hosts.Add(host);
        var pid = host.Member.RunningPid();
        // The agent's HTTP handler and database connection, made before the refresh, as a running agent's are.
        var healthHandler = host.Tls.CreateHttpHandler();
        using var database = host.Database();
        await database.Leases.PutDurableAsync("/corral/rotation", "before", CancellationToken.None);

        // A copy of the old certificate and key, as someone who had them would keep.
        var oldCopy = Directory.CreateDirectory(Path.Combine(_root, "old-copy")).FullName;
        File.Copy(host.Tls.CertificateFile, Path.Combine(oldCopy, "host.pem"));
        File.Copy(host.Tls.KeyFile, Path.Combine(oldCopy, "host.key"));
        string[] withOld = [$"--cacert={host.Tls.CaCertificateFile}", $"--cert={Path.Combine(oldCopy, "host.pem")}", $"--key={Path.Combine(oldCopy, "host.key")}"];

        var (old, refreshed) = host.Tls.Refresh(host.Options.Name,
            PoolCertificateAuthority.NamesFor(host.Options.Name, host.Options.PeerUrl, host.Options.ClientUrl), TimeProvider.System);
        Assert.NotEqual(old.SerialNumber, refreshed.SerialNumber);
        Assert.Equal(refreshed.SerialNumber, host.Tls.LoadCertificate().SerialNumber);

        // The member serves the new certificate on both ports at once, without a restart.
        Assert.Equal(refreshed.SerialNumber, await ServedSerialAsync(host.Options.ClientUrl, host.Tls));
        Assert.Equal(refreshed.SerialNumber, await ServedSerialAsync(host.Options.PeerUrl, host.Tls));
        Assert.Equal(pid, host.Member.RunningPid());

        // Not revoked yet: the old certificate is still accepted (a refresh alone does not refuse it).
        var (code, output) = await host.EtcdctlAsync([.. withOld, "get", "/corral/rotation", "--print-value-only"]);
        Assert.True(code == 0 && output == "before", output);

        // The old serial in the pool's list: refused at the next connection, the member not restarted.
        Assert.True(host.Tls.WriteRevocationList([old.SerialNumber], TimeProvider.System));
        Assert.False(host.Tls.WriteRevocationList([old.SerialNumber], TimeProvider.System));
        (code, output) = await host.EtcdctlAsync([.. withOld, "get", "/corral/rotation", "--print-value-only"]);
        Assert.True(code != 0 && !output.Contains("before", StringComparison.Ordinal), output);
        (code, output) = await host.EtcdctlAsync([.. TlsMember.With(host.Tls), "put", "/corral/rotation", "after"]);
        Assert.True(code == 0, output);
        Assert.Equal(pid, host.Member.RunningPid());

        // The agent's handler made before the refresh presents the new certificate on a new connection: served.
        using (var health = new HttpClient(healthHandler))
        {
            Assert.Contains("true", await health.GetStringAsync(new Uri(new Uri(host.Options.ClientUrl), "/health")), StringComparison.Ordinal);
        }

        // The agent's database connection keeps working, and a new one is served.
        Assert.Equal("after", await database.Leases.GetValueAsync("/corral/rotation", CancellationToken.None));
        using var fresh = host.Database();
        Assert.Equal("after", await fresh.Leases.GetValueAsync("/corral/rotation", CancellationToken.None));

        // A member is refused as a server once its certificate is revoked: the agent's client checks the list too.
        Assert.True(host.Tls.WriteRevocationList([old.SerialNumber, refreshed.SerialNumber], TimeProvider.System));
        using (var client = new HttpClient(host.Tls.CreateHttpHandler()))
        {
            await Assert.ThrowsAsync<HttpRequestException>(() => client.GetStringAsync(new Uri(new Uri(host.Options.ClientUrl), "/health")));
        }
    }

    [Fact]
    public async Task A_member_started_before_the_revocation_list_existed_gets_one_and_serves()
    {
        var host = TlsMember.Prepare(_root, "rotate-host2");
        host.Tls.CreatePool(host.Options.Name, PoolCertificateAuthority.NamesFor(host.Options.Name, host.Options.PeerUrl, host.Options.ClientUrl),
            TimeProvider.System);
        // As an older agent left the directory: no bundle, no list.
        File.Delete(host.Tls.MemberBundleFile);
        File.Delete(host.Tls.RevocationListFile);
        _hosts.Add(host);
        await host.Member.StartAsync(Corral.PoolDatabase.Etcd.Membership.EtcdStartMode.NewCluster, "", CancellationToken.None);
        await host.Member.WaitHealthyAsync(TimeSpan.FromSeconds(60), CancellationToken.None);
        Assert.Empty(host.Tls.RevokedSerials());
        var (code, output) = await host.EtcdctlAsync([.. TlsMember.With(host.Tls), "put", "/corral/probe", "ok"]);
        Assert.True(code == 0, output);
    }

    [Fact]
    public async Task A_revoked_certificate_whose_serial_has_its_high_bit_set_is_refused_by_etcd()
    {
        // CI of 908a558: one certificate in 256 had a serial that the list gave as a negative number, which etcd (Go's
        // big.Int) compares as another certificate's, so the revoked certificate was still served. One made to be so.
        var host = await TlsMember.StartNewPoolAsync(_root, "rotate-host3");
        _hosts.Add(host);
        var client = Directory.CreateDirectory(Path.Combine(_root, "high-bit")).FullName;
        using (var authority = X509Certificate2.CreateFromPemFile(host.Tls.CaCertificateFile, host.Tls.CaKeyFile))
        using (var key = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256))
        {
            var request = new CertificateRequest("CN=high-bit", key, System.Security.Cryptography.HashAlgorithmName.SHA256);
            request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new System.Security.Cryptography.Oid("1.3.6.1.5.5.7.3.2")], false));
            using var certificate = request.Create(authority, DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddHours(1),
                Convert.FromHexString("009AA79C067CB044E7F1A8C124EF5EDF"));
            File.WriteAllText(Path.Combine(client, "client.pem"), certificate.ExportCertificatePem());
            File.WriteAllText(Path.Combine(client, "client.key"), key.ExportPkcs8PrivateKeyPem());
            Assert.Equal("009AA79C067CB044E7F1A8C124EF5EDF", certificate.SerialNumber);
        }

        string[] withClient = [$"--cacert={host.Tls.CaCertificateFile}", $"--cert={Path.Combine(client, "client.pem")}", $"--key={Path.Combine(client, "client.key")}"];
        var (code, output) = await host.EtcdctlAsync([.. withClient, "put", "/corral/high-bit", "served"]);
        Assert.True(code == 0, output);

        Assert.True(host.Tls.WriteRevocationList(["009AA79C067CB044E7F1A8C124EF5EDF"], TimeProvider.System));
        (code, output) = await host.EtcdctlAsync([.. withClient, "get", "/corral/high-bit", "--print-value-only"]);
        Assert.True(code != 0 && !output.Contains("served", StringComparison.Ordinal), output);
        (code, output) = await host.EtcdctlAsync([.. TlsMember.With(host.Tls), "get", "/corral/high-bit", "--print-value-only"]);
        Assert.True(code == 0 && output == "served", output);
    }

    /// <summary>The serial number of the certificate a member presents at <paramref name="url"/>, read in a new handshake.</summary>
    private static async Task<string> ServedSerialAsync(string url, EtcdTlsFiles tls)
    {
        var uri = new Uri(url);
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(uri.Host, uri.Port);
        await using var ssl = new SslStream(tcp.GetStream());
        var options = tls.ClientOptions();
        options.TargetHost = uri.Host;
        await ssl.AuthenticateAsClientAsync(options);
        return X509CertificateLoader.LoadCertificate(ssl.RemoteCertificate!.GetRawCertData()).SerialNumber;
    }
}
