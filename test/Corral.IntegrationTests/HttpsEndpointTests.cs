using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Corral.Api;
using Corral.Api.Client;
using Corral.Api.Client.Tls;
using Corral.Api.Http;
using Corral.Api.Https;
using Corral.Api.Pool;
using Corral.Api.Sessions;
using Corral.Model;
using Corral.PoolDatabase;
using Corral.PoolDatabase.Etcd;
using Corral.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>
/// The host's real HTTPS endpoint (Kestrel with the host's own certificate, as the agent configures it) against a real
/// etcd: TLS 1.2 with and without SNI as XenCenter connects, the Certificate record, host.get_server_certificate, calls
/// between hosts pinned to the pool's certificates, and https_only closing plain HTTP.
/// </summary>
public sealed class HttpsEndpointTests : IAsyncLifetime
{
    private const string HostRef = "OpaqueRef:4f6b1a52-9f0e-4d57-9d3a-0d7c8b1e2a11";
    private readonly string _state = Directory.CreateTempSubdirectory("corral-https-").FullName;
    private EtcdFixture _etcd = null!;
    private WebApplication _app = null!;
    private HostCertificate _certificate = null!;
    private Uri _http = null!;
    private Uri _https = null!;

    public async Task InitializeAsync()
    {
        _etcd = await EtcdFixture.StartAsync();
        var https = new HttpsOptions { ListenAddress = "127.0.0.1", HttpPort = 0, HttpsPort = 0, CertificatePath = Path.Combine(_state, "xapi-ssl.pem") };
        _certificate = HostCertificateFile.LoadOrCreate(https.CertificatePath, HostCertificateSubjects.For("it-host", "127.0.0.1"), 3650, TimeProvider.System,
            NullLogger.Instance);
        var builder = WebApplication.CreateBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.ListenXenApi(https, _certificate));
        builder.Services.AddEtcdPoolDatabase(o => o.Endpoints = _etcd.Endpoint);
        builder.Services.AddXenApi(o =>
        {
            o.HostRef = HostRef;
            o.StateDirectory = _state;
        });
        builder.Services.AddXenApiHttps(https, _certificate, HostCertificateSubjects.For("it-host", "127.0.0.1"));
        builder.Services.AddSingleton(SrDrivers.Default);
        _app = builder.Build();
        _app.UseHttpsOnlyGate();
        // What name the client asked for in its TLS hello (none: empty), as the server saw it.
        _app.MapGet("/test-sni", (HttpContext context) => context.Features.Get<ITlsHandshakeFeature>()?.HostName ?? "(not tls)");
        _app.MapXenApi();
        await _app.StartAsync();
        var database = _app.Services.GetRequiredService<IPoolDatabase>();
        var tx = new PoolTransaction();
        tx.Create(XenClasses.HostSchema, new Dictionary<string, object?> { ["name_label"] = "it-host", ["address"] = "127.0.0.1" }, HostRef);
        await database.CommitAsync(tx, default);
        await _app.Services.GetRequiredService<SessionService>().SetPasswordAsync("root", "pw", default);
        var addresses = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Select(a => new Uri(a)).ToList();
        _http = addresses.Single(a => a.Scheme == "http");
        _https = addresses.Single(a => a.Scheme == "https");
        await _app.Services.GetRequiredService<HostCertificateRecords>().Recorded.WaitAsync(TimeSpan.FromSeconds(30));
    }

    public async Task DisposeAsync()
    {
        try
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
        finally
        {
            await _etcd.DisposeAsync();
            Directory.Delete(_state, recursive: true);
        }
    }

    /// <summary>A raw HTTP/1.0 exchange over TLS, as XenCenter's own HTTP code makes it (SslStream, any certificate taken).</summary>
    private async Task<(string Response, SslProtocols Protocol, X509Certificate2 Presented)> RawTlsAsync(string targetHost, SslProtocols protocols, string method,
        string path, string body = "")
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, _https.Port);
        X509Certificate2? presented = null;
        await using var tls = new SslStream(tcp.GetStream());
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = targetHost,
            EnabledSslProtocols = protocols,
            RemoteCertificateValidationCallback = (_, certificate, _, _) =>
            {
                // XenCenter's raw HTTP takes any certificate; here the one presented is kept to be checked.
                presented = certificate is null ? null : X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
                return presented is not null;
            },
        });
        var request = $"{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {Encoding.UTF8.GetByteCount(body)}\r\n\r\n{body}";
        await tls.WriteAsync(Encoding.UTF8.GetBytes(request));
        using var reader = new StreamReader(tls, Encoding.UTF8);
        return (await reader.ReadToEndAsync(), tls.SslProtocol, presented!);
    }

    private static string LoginBody => """{"jsonrpc":"2.0","method":"session.login_with_password","params":["root","pw"],"id":1}""";

    [Theory]
    [InlineData("it-host", "it-host")]
    [InlineData("", "")]
    [InlineData("127.0.0.1", "")]
    public async Task Tls_1_2_with_or_without_sni_serves_the_api_with_the_hosts_certificate(string targetHost, string nameServerSaw)
    {
        var (login, protocol, presented) = await RawTlsAsync(targetHost, SslProtocols.Tls12, "POST", "/jsonrpc", LoginBody);
        Assert.Equal(SslProtocols.Tls12, protocol);
        Assert.StartsWith("HTTP/1.1 200", login, StringComparison.Ordinal);
        Assert.Contains("\"result\":\"OpaqueRef:", login, StringComparison.Ordinal);
        Assert.Equal(_certificate.Fingerprint, CertificateFingerprint.Sha256(presented));

        var (sni, _, _) = await RawTlsAsync(targetHost, SslProtocols.Tls12, "GET", "/test-sni");
        Assert.EndsWith("\r\n\r\n" + nameServerSaw, sni, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Tls_1_3_serves_xml_rpc_on_rpc2_too()
    {
        const string call = "<?xml version=\"1.0\"?><methodCall><methodName>session.login_with_password</methodName><params><param><value>root</value></param><param><value>pw</value></param></params></methodCall>";
        var (response, protocol, _) = await RawTlsAsync("", SslProtocols.Tls13, "POST", "/RPC2", call);
        Assert.Equal(SslProtocols.Tls13, protocol);
        Assert.Contains("<value>Success</value>", response, StringComparison.Ordinal);
    }

    private JsonRpcXenApiClient PinnedClient() => new(new Uri(_https, "/jsonrpc"),
        PinnedTls.CreateHandler(c => Assert.Equal(_certificate.Fingerprint, CertificateFingerprint.Sha256(c)), TimeSpan.FromSeconds(5)));

    private static async Task<string> LoginAsync(IXenApiClient client) => (string)(await client.CallAsync("session.login_with_password", ["root", "pw"], default))!;

    [Fact]
    public async Task The_certificate_record_is_the_served_certificate_and_the_host_lists_it()
    {
        using var client = PinnedClient();
        var session = await LoginAsync(client);
        var records = (Dictionary<string, object?>)(await client.CallAsync("Certificate.get_all_records", [session], default))!;
        var (reference, value) = Assert.Single(records);
        var record = (Dictionary<string, object?>)value!;
        Assert.Equal("", record["name"]);
        Assert.Equal("host", record["type"]);
        Assert.Equal(HostRef, record["host"]);
        Assert.Equal(XenDateTime.Format(_certificate.Certificate.NotBefore.ToUniversalTime()), record["not_before"]);
        Assert.Equal(XenDateTime.Format(_certificate.Certificate.NotAfter.ToUniversalTime()), record["not_after"]);
        Assert.Equal(_certificate.Fingerprint, record["fingerprint"]);

        var certificates = (List<object?>)(await client.CallAsync("host.get_certificates", [session, HostRef], default))!;
        Assert.Equal([reference], certificates);
        var pem = (string)(await client.CallAsync("host.get_server_certificate", [session, HostRef], default))!;
        using var served = X509Certificate2.CreateFromPem(pem);
        Assert.Equal(_certificate.Fingerprint, CertificateFingerprint.Sha256(served));
        var missing = await Assert.ThrowsAsync<XenApiException>(() => client.CallAsync("host.get_server_certificate", [session, "OpaqueRef:nope"], default));
        Assert.Equal(ErrorCodes.HandleInvalid, missing.Code);
    }

    [Fact]
    public async Task The_host_says_it_verifies_the_certificates_of_the_hosts_it_calls()
    {
        var database = _app.Services.GetRequiredService<IPoolDatabase>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(25);
        while (!(await database.GetAsync(XenClasses.Host, HostRef, default)).Get(XenApi.Host.TlsVerificationEnabled))
        {
            Assert.True(DateTime.UtcNow < deadline, "host.tls_verification_enabled is still false");
            await Task.Delay(250);
        }
    }

    [Fact]
    public async Task A_new_certificate_replaces_the_hosts_record()
    {
        var database = _app.Services.GetRequiredService<IPoolDatabase>();
        var old = Assert.Single(await database.GetAllAsync(XenApi.Certificate.ClassName, default));
        var (fresh, key) = HostCertificateFile.Create(HostCertificateSubjects.For("it-host", "127.0.0.2"), 3650, TimeProvider.System);
        var records = new HostCertificateRecords(database, new HostCertificate(fresh, "unused"), _app.Services.GetRequiredService<PoolCertificateTrust>(),
            _app.Services.GetRequiredService<TlsVerification>(), _app.Services.GetRequiredService<IOptions<ApiOptions>>(), NullLogger<HostCertificateRecords>.Instance);
        await records.RecordAsync(default);

        var now = Assert.Single(await database.GetAllAsync(XenApi.Certificate.ClassName, default));
        Assert.NotEqual(old.Ref, now.Ref);
        Assert.Equal(CertificateFingerprint.Sha256(fresh), now.Get(XenApi.Certificate.Fingerprint));
        Assert.Null(await database.Leases.GetValueAsync(PoolKeys.CertificatePem(old.Ref), default));
        Assert.Equal(fresh.ExportCertificatePem() + "\n", await database.Leases.GetValueAsync(PoolKeys.CertificatePem(now.Ref), default));
        Assert.NotEmpty(key);
    }

    /// <summary>A client that takes whatever certificate the host presents (the one served changes in these tests).</summary>
    private JsonRpcXenApiClient AnyCertificateClient() => new(new Uri(_https, "/jsonrpc"), PinnedTls.CreateHandler(_ => { }, TimeSpan.FromSeconds(5)));

    private async Task<string> RecordedFingerprintAsync() =>
        Assert.Single(await _app.Services.GetRequiredService<IPoolDatabase>().GetAllAsync(XenApi.Certificate.ClassName, default)).Get(XenApi.Certificate.Fingerprint);

    [Fact]
    public async Task An_installed_certificate_is_served_from_the_next_handshake_kept_on_disk_and_recorded()
    {
        using var caKey = RSA.Create(2048);
        var caRequest = new CertificateRequest("CN=Example CA", caKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        using var ca = caRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(5));
        using var key = RSA.Create(2048);
        using var leaf = new CertificateRequest("CN=it-host.example.com", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1)
            .Create(ca, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1), [7, 7, 7]);
        var before = _certificate.Fingerprint;
        using var client = AnyCertificateClient();
        var session = await LoginAsync(client);

        // A bad one first: xapi's error, and the certificate served stays.
        using var other = RSA.Create(2048);
        var mismatch = await Assert.ThrowsAsync<XenApiException>(() => client.CallAsync("host.install_server_certificate",
            [session, HostRef, leaf.ExportCertificatePem(), other.ExportPkcs8PrivateKeyPem(), ""], default));
        Assert.Equal("SERVER_CERTIFICATE_KEY_MISMATCH", mismatch.Code);
        Assert.Equal(before, CertificateFingerprint.Sha256((await RawTlsAsync("", SslProtocols.Tls12, "GET", "/test-sni")).Presented));

        await client.CallAsync("host.install_server_certificate", [session, HostRef, leaf.ExportCertificatePem(), key.ExportPkcs8PrivateKeyPem(), ca.ExportCertificatePem()], default);
        var (_, _, presented) = await RawTlsAsync("", SslProtocols.Tls12, "GET", "/test-sni");
        Assert.Equal(CertificateFingerprint.Sha256(leaf), CertificateFingerprint.Sha256(presented));
        Assert.Equal(CertificateFingerprint.Sha256(leaf), await RecordedFingerprintAsync());
        var pem = (string)(await client.CallAsync("host.get_server_certificate", [session, HostRef], default))!;
        Assert.Equal(leaf.ExportCertificatePem() + "\n", pem);

        // The next start serves it again, with its chain (it was not made here, so it is kept whatever it names).
        var reloaded = HostCertificateFile.LoadOrCreate(_certificate.Path, HostCertificateSubjects.For("it-host", "127.0.0.1"), 3650, TimeProvider.System, NullLogger.Instance);
        Assert.Equal(CertificateFingerprint.Sha256(leaf), reloaded.Fingerprint);
        Assert.Contains(ca.ExportCertificatePem(), await File.ReadAllTextAsync(_certificate.Path), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Reset_serves_a_new_self_signed_certificate_and_ha_refuses_an_install()
    {
        var before = _certificate.Fingerprint;
        using var client = AnyCertificateClient();
        var session = await LoginAsync(client);
        await client.CallAsync("host.reset_server_certificate", [session, HostRef], default);
        var (_, _, presented) = await RawTlsAsync("", SslProtocols.Tls12, "GET", "/test-sni");
        Assert.NotEqual(before, CertificateFingerprint.Sha256(presented));
        Assert.Equal(presented.Subject, presented.Issuer);
        Assert.Equal(CertificateFingerprint.Sha256(presented), await RecordedFingerprintAsync());

        var database = _app.Services.GetRequiredService<IPoolDatabase>();
        var tx = new PoolTransaction();
        tx.Create(XenClasses.PoolSchema, new Dictionary<string, object?> { ["ha_enabled"] = true });
        await database.CommitAsync(tx, default);
        var refused = await Assert.ThrowsAsync<XenApiException>(() => client.CallAsync("host.install_server_certificate",
            [session, HostRef, "", "", ""], default));
        Assert.Equal(ErrorCodes.HaIsEnabled, refused.Code);
    }

    [Fact]
    public async Task Calls_between_hosts_are_pinned_to_the_pools_certificates()
    {
        var remote = _app.Services.GetRequiredService<RemoteHosts>();
        using (var pinned = await remote.ConnectAsync($"127.0.0.1:{_https.Port}", default))
        {
            Assert.StartsWith("OpaqueRef:", await LoginAsync(pinned), StringComparison.Ordinal);
        }

        // A host whose pool does not hold this certificate refuses it, whatever the certificate says.
        var stranger = new RemoteHosts(Options.Create(new ApiOptions()),
            new PoolCertificateTrust(Options.Create(new ApiOptions()), NullLogger<PoolCertificateTrust>.Instance));
        using var refusing = await stranger.ConnectAsync($"127.0.0.1:{_https.Port}", default);
        var refused = await Assert.ThrowsAsync<XenApiTransportException>(() => LoginAsync(refusing));
        Assert.True(refused.CertificateRejected);
        Assert.Contains(_certificate.Fingerprint, refused.Message, StringComparison.Ordinal);
        Assert.Contains(_certificate.Fingerprint, File.ReadAllText(Path.Combine(_state, PoolCertificateTrust.FileName)), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Tls_verification_emergency_disabled_on_a_host_lets_it_call_hosts_it_cannot_match_until_enabled_again()
    {
        var database = _app.Services.GetRequiredService<IPoolDatabase>();
        var tx = new PoolTransaction();
        tx.Create(XenClasses.PoolSchema, new Dictionary<string, object?> { ["name_label"] = "pool", ["master"] = HostRef });
        await database.CommitAsync(tx, default);
        await PoolRecord.RefreshAsync(database, default);
        Assert.True(Assert.Single(await database.GetAllAsync(XenClasses.Pool, default)).Get(XenApi.Pool.TlsVerificationEnabled));
        using var client = AnyCertificateClient();
        var session = await LoginAsync(client);

        // A host that trusts none of this pool's certificates: refused, until checking is turned off on it alone.
        var elsewhere = Directory.CreateTempSubdirectory("corral-elsewhere-").FullName;
        var options = Options.Create(new ApiOptions { StateDirectory = elsewhere });
        var verification = new TlsVerification(options, TimeProvider.System, NullLogger<TlsVerification>.Instance);
        var stranger = new RemoteHosts(options, new PoolCertificateTrust(options, NullLogger<PoolCertificateTrust>.Instance), verification: verification);
        verification.Disable();
        using (var uncheckedClient = await stranger.ConnectAsync($"127.0.0.1:{_https.Port}", default))
        {
            Assert.StartsWith("OpaqueRef:", await LoginAsync(uncheckedClient), StringComparison.Ordinal);
        }

        verification.Enable();
        using (var checkedAgain = await stranger.ConnectAsync($"127.0.0.1:{_https.Port}", default))
        {
            Assert.True((await Assert.ThrowsAsync<XenApiTransportException>(() => LoginAsync(checkedAgain))).CertificateRejected);
        }

        Directory.Delete(elsewhere, recursive: true);

        // Through the API, as xe host-emergency-disable-tls-verification: the file, and the host's record saying so.
        async Task<bool> HostVerifies() => (await database.GetAsync(XenClasses.Host, HostRef, default)).Get(XenApi.Host.TlsVerificationEnabled);
        await client.CallAsync("host.emergency_disable_tls_verification", [session], default);
        Assert.True(File.Exists(Path.Combine(_state, TlsVerification.FileName)));
        Assert.False(await HostVerifies());
        await client.CallAsync("host.emergency_reenable_tls_verification", [session], default);
        Assert.False(File.Exists(Path.Combine(_state, TlsVerification.FileName)));
        Assert.True(await HostVerifies());
        await client.CallAsync("host.emergency_disable_tls_verification", [session], default);
        await client.CallAsync("pool.enable_tls_verification", [session], default);
        Assert.True(await HostVerifies());
        Assert.Empty(Assert.Single(await database.GetAllAsync(XenClasses.Pool, default)).Get(XenApi.Pool.CurrentOperations));

        // As xapi: not with HA on.
        await database.UpdateAsync([(XenClasses.Pool, Assert.Single(await database.GetAllAsync(XenClasses.Pool, default)).Ref)], (objs, t) =>
        {
            var p = objs[0].Clone();
            p.Set(XenApi.Pool.HaEnabled, true);
            t.Update(p);
        }, default);
        Assert.Equal(ErrorCodes.HaIsEnabled, (await Assert.ThrowsAsync<XenApiException>(() => client.CallAsync("pool.enable_tls_verification", [session], default))).Code);
    }

    private async Task<bool> PlainHttpAnswersAsync()
    {
        // A new connection each time, as a client arriving after the change.
        using var http = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.Zero }) { Timeout = TimeSpan.FromSeconds(5) };
        try
        {
            using var content = new StringContent(LoginBody, Encoding.UTF8, "application/json");
            using var response = await http.PostAsync(new Uri(_http, "/jsonrpc"), content);
            return (await response.Content.ReadAsStringAsync()).Contains("OpaqueRef:", StringComparison.Ordinal);
        }
        catch (HttpRequestException)
        {
            return false;
        }
    }

    [Fact]
    public async Task Https_only_closes_plain_http_and_leaves_https_open()
    {
        Assert.True(await PlainHttpAnswersAsync());
        using var keptAlive = new HttpClient();
        using (var first = await keptAlive.PostAsync(new Uri(_http, "/jsonrpc"), new StringContent(LoginBody, Encoding.UTF8, "application/json")))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }

        using var client = PinnedClient();
        var session = await LoginAsync(client);
        await client.CallAsync("host.set_https_only", [session, HostRef, true], default);
        Assert.Equal(true, await client.CallAsync("host.get_https_only", [session, HostRef], default));
        Assert.False(await PlainHttpAnswersAsync());
        // A connection kept alive from before gets no answer either.
        await Assert.ThrowsAsync<HttpRequestException>(() => keptAlive.PostAsync(new Uri(_http, "/jsonrpc"), new StringContent(LoginBody, Encoding.UTF8, "application/json")));
        Assert.StartsWith("OpaqueRef:", await LoginAsync(client), StringComparison.Ordinal);

        await client.CallAsync("host.set_https_only", [session, HostRef, false], default);
        Assert.True(await PlainHttpAnswersAsync());
    }

    [Fact]
    public async Task Https_only_set_from_another_host_closes_this_hosts_plain_http_within_seconds()
    {
        // pool.set_https_only on another host writes this host's record; this host follows its record.
        var database = _app.Services.GetRequiredService<IPoolDatabase>();
        await database.UpdateAsync([(XenClasses.Host, HostRef)], (objs, tx) =>
        {
            var host = objs[0].Clone();
            host.Set(XenApi.Host.HttpsOnly, true);
            tx.Update(host);
        }, default);

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (await PlainHttpAnswersAsync())
        {
            Assert.True(DateTime.UtcNow < deadline, "plain HTTP still answers 15 s after https_only was set");
            await Task.Delay(200);
        }
    }

    [Fact]
    public async Task Pool_set_https_only_sets_every_host()
    {
        using var client = PinnedClient();
        var session = await LoginAsync(client);
        var tx = new PoolTransaction();
        var created = tx.Create(XenClasses.PoolSchema, new Dictionary<string, object?> { ["name_label"] = "p", ["master"] = HostRef });
        await _app.Services.GetRequiredService<IPoolDatabase>().CommitAsync(tx, default);
        await client.CallAsync("pool.set_https_only", [session, created.Ref, true], default);
        Assert.Equal(true, await client.CallAsync("host.get_https_only", [session, HostRef], default));
        Assert.False(await PlainHttpAnswersAsync());
        var bad = await Assert.ThrowsAsync<XenApiException>(() => client.CallAsync("pool.set_https_only", [session, "OpaqueRef:nope", false], default));
        Assert.Equal(ErrorCodes.HandleInvalid, bad.Code);
    }
}
