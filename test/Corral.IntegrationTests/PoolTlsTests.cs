using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Corral.Agent.Membership;
using Corral.Api;
using Corral.Api.Dispatch;
using Corral.Api.Methods;
using Corral.Api.Pool;
using Corral.Api.Sessions;
using Corral.Model;
using Corral.PoolDatabase.Etcd;
using Corral.PoolDatabase.Etcd.Membership;
using Corral.PoolDatabase.Etcd.Tls;
using Corral.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>
/// The pool database on TLS, with real etcd members started as the agent starts them: a client without a certificate
/// of the pool's CA is refused (shown with Debian's etcdctl), hosts join and leave with certificates the pool's CA
/// signed, and a host that leaves starts a pool of its own with a CA of its own.
/// </summary>
public sealed class PoolTlsTests : IAsyncLifetime
{
    private readonly string _root = Directory.CreateTempSubdirectory("corral-pool-tls-").FullName;
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

    private async Task<TlsMember> NewPoolAsync(string name)
    {
        var host = await TlsMember.StartNewPoolAsync(_root, name);
        _hosts.Add(host);
        return host;
    }

    [Fact]
    public async Task A_client_without_a_certificate_of_the_pools_ca_is_refused_and_one_with_it_is_served()
    {
        var host = await NewPoolAsync("tls-host1");
        var ca = $"--cacert={host.Tls.CaCertificateFile}";

        // With the host's certificate: served.
        var (code, output) = await host.EtcdctlAsync([.. TlsMember.With(host.Tls), "put", "/corral/probe", "written"]);
        Assert.True(code == 0, output);

        // No certificate, though the client checks the member's as it should: refused in the handshake.
        (code, output) = await host.EtcdctlAsync(ca, "put", "/corral/probe", "stranger");
        Assert.True(code != 0, output);
        (code, output) = await host.EtcdctlAsync(ca, "get", "/corral/probe");
        Assert.True(code != 0 && !output.Contains("written", StringComparison.Ordinal), output);
        // No certificate and no checking at all: still refused, the refusal is the member's.
        (code, output) = await host.EtcdctlAsync("--insecure-transport=false", "--insecure-skip-tls-verify", "get", "/corral/probe");
        Assert.True(code != 0 && !output.Contains("written", StringComparison.Ordinal), output);
        // Plain gRPC to the client port: no TLS, no answer.
        (code, output) = await TlsMember.Etcdctl(host.Options.ClientUrl.Replace("https://", "http://", StringComparison.Ordinal), "get", "/corral/probe");
        Assert.True(code != 0 && !output.Contains("written", StringComparison.Ordinal), output);

        // A certificate of another pool's CA (a stranger made a pool of their own): refused.
        var stranger = new EtcdTlsFiles(Path.Combine(_root, "stranger"));
        stranger.CreatePool("stranger", ["127.0.0.1"], TimeProvider.System);
        (code, output) = await host.EtcdctlAsync(ca, $"--cert={stranger.CertificateFile}", $"--key={stranger.KeyFile}", "get", "/corral/probe");
        Assert.True(code != 0 && !output.Contains("written", StringComparison.Ordinal), output);
        // And the client refuses a member whose certificate is not of the pool's CA it trusts.
        (code, output) = await host.EtcdctlAsync($"--cacert={stranger.CaCertificateFile}", $"--cert={host.Tls.CertificateFile}", $"--key={host.Tls.KeyFile}",
            "get", "/corral/probe");
        Assert.True(code != 0 && !output.Contains("written", StringComparison.Ordinal), output);

        // Nothing the refused clients sent was written.
        (code, output) = await host.EtcdctlAsync([.. TlsMember.With(host.Tls), "get", "/corral/probe", "--print-value-only"]);
        Assert.True(code == 0, output);
        Assert.Equal("written", output);

        // The peer port asks the same of the other members: without a certificate of the pool's CA, no answer.
        var peerVersion = new Uri(new Uri(host.Options.PeerUrl), "/version");
        var noCertificate = host.Tls.ClientOptions();
        noCertificate.ClientCertificates = null;
        noCertificate.LocalCertificateSelectionCallback = null;
        using (var bare = new HttpClient(new SocketsHttpHandler { SslOptions = noCertificate }))
        {
            await Assert.ThrowsAsync<HttpRequestException>(() => bare.GetStringAsync(peerVersion));
        }

        using (var member = new HttpClient(host.Tls.CreateHttpHandler()))
        {
            Assert.Contains("etcdserver", await member.GetStringAsync(peerVersion), StringComparison.Ordinal);
        }

        // The agent's own connection (gRPC with the host's certificate) is served.
        using var database = host.Database();
        await database.Leases.PutDurableAsync("/corral/agent-probe", "agent", CancellationToken.None);
        Assert.Equal("agent", await database.Leases.GetValueAsync("/corral/agent-probe", CancellationToken.None));
    }

    [Fact]
    public async Task Hosts_join_with_certificates_of_the_pools_ca_and_a_host_that_leaves_gets_a_ca_of_its_own()
    {
        var host1 = await NewPoolAsync("tls-host1");
        using var database = host1.Database();
        var admin = database.CreateClusterAdmin(NullLogger.Instance);

        // host2 joins as the master admits a host: its request signed by the pool's CA, a learner added, then promoted.
        var host2 = TlsMember.Prepare(_root, "tls-host2");
        _hosts.Add(host2);
        using (var ca = host1.Tls.LoadAuthority())
        {
            host2.Tls.Write(host2.CertificateFrom(ca));
        }

        var members = await admin.ListAsync(CancellationToken.None);
        var id2 = await admin.AddLearnerAsync(host2.Options.PeerUrl, CancellationToken.None);
        await host2.Member.StartAsync(EtcdStartMode.JoinExisting, EtcdClusterAdmin.InitialCluster(members, host2.Options.Name, host2.Options.PeerUrl),
            CancellationToken.None);
        await host2.Member.WaitServingAsync(TimeSpan.FromSeconds(60), CancellationToken.None);
        await admin.PromoteAsync(id2, TimeSpan.FromSeconds(60), CancellationToken.None);

        // host3 starts as a pool of its own (its own CA), then joins through its agent's membership change.
        var host3 = await JoinThroughTransitionAsync(host1, admin);
        Assert.Equal(await File.ReadAllTextAsync(host1.Tls.CaCertificateFile), await File.ReadAllTextAsync(host3.Tls.CaCertificateFile));
        Assert.Equal(await File.ReadAllTextAsync(host1.Tls.CaKeyFile), await File.ReadAllTextAsync(host3.Tls.CaKeyFile));
        Assert.Equal(3, (await admin.ListAsync(CancellationToken.None)).Count(m => !m.IsLearner && m.Name.Length > 0));

        // What one host writes, another reads: the members replicate over their TLS peer port.
        await database.Leases.PutDurableAsync("/corral/pool-probe", "replicated", CancellationToken.None);
        var (code, output) = await host3.EtcdctlAsync([.. TlsMember.With(host3.Tls), "get", "/corral/pool-probe", "--print-value-only"]);
        Assert.True(code == 0 && output == "replicated", output);
        (code, output) = await host2.EtcdctlAsync([.. TlsMember.With(host1.Tls), "member", "list"]);
        Assert.True(code == 0 && output.Split('\n').Count(l => l.Contains(", started,", StringComparison.Ordinal)) == 3, output);

        // host3 is ejected: it leaves the cluster, forgets the pool's CA and starts a pool of its own with a new one.
        var log = new ListLogger();
        var runner3 = Runner(host3, log);
        new MembershipTransition(MembershipChange.Leave, 0).Save(runner3.TransitionFile);
        await runner3.RunAsync(CancellationToken.None);
        await host3.Member.WaitHealthyAsync(TimeSpan.FromSeconds(60), CancellationToken.None);

        Assert.NotEqual(await File.ReadAllTextAsync(host1.Tls.CaCertificateFile), await File.ReadAllTextAsync(host3.Tls.CaCertificateFile));
        Assert.False((await admin.ListAsync(CancellationToken.None)).Any(m => m.Name == host3.Options.Name), string.Join('\n', log.Lines));
        Assert.Contains(log.Lines, l => l.Contains(" 1562 ", StringComparison.Ordinal) && l.Contains("Forgot the pool's CA", StringComparison.Ordinal));
        Assert.Contains(log.Lines, l => l.Contains(" 1560 ", StringComparison.Ordinal) && l.Contains("a new pool", StringComparison.Ordinal));
        // The pool's hosts and the ejected one no longer take each other's certificates.
        (code, output) = await host3.EtcdctlAsync([$"--cacert={host3.Tls.CaCertificateFile}", $"--cert={host1.Tls.CertificateFile}", $"--key={host1.Tls.KeyFile}",
            "get", "/corral/pool-probe"]);
        Assert.True(code != 0, output);
        (code, output) = await host1.EtcdctlAsync([$"--cacert={host1.Tls.CaCertificateFile}", $"--cert={host3.Tls.CertificateFile}", $"--key={host3.Tls.KeyFile}",
            "get", "/corral/pool-probe"]);
        Assert.True(code != 0, output);
        // Its own pool has its own data, served to its own certificate.
        (code, output) = await host3.EtcdctlAsync([.. TlsMember.With(host3.Tls), "member", "list"]);
        Assert.True(code == 0 && output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length == 1, output);
    }

    [Fact]
    public async Task The_master_signs_a_joining_hosts_request_only_for_a_pool_admin_and_only_for_the_requesters_key()
    {
        var host1 = await NewPoolAsync("tls-master");
        var runner = Runner(host1);
        var services = new ServiceCollection();
        services.AddLogging(l => l.AddConsole().SetMinimumLevel(LogLevel.Warning));
        services.AddEtcdPoolDatabase(o =>
        {
            o.Endpoints = host1.Options.ClientUrl;
            o.CertificateDirectory = host1.Tls.Directory;
            o.Member = host1.Options;
        });
        services.AddXenApi(o => o.StateDirectory = host1.StateDirectory);
        services.AddSingleton(SrDrivers.Default);
        services.AddSingleton(runner);
        services.AddSingleton<AgentLifecycle>();
        services.AddSingleton<IPoolMembership, PoolMembership>();
        services.AddSingleton<IApiMethodProvider, PoolMembershipMethods>();
        await using var provider = services.BuildServiceProvider();
        var api = provider.GetRequiredService<ApiDispatcher>();
        await provider.GetRequiredService<SessionService>().SetPasswordAsync("root", "pw", default);
        // As the master's registration makes it: the pool secret the admission hands on.
        await provider.GetRequiredService<SessionService>().RefreshLocalCredentialsAsync(default);
        var admin = provider.GetRequiredService<EtcdPoolDatabase>().CreateClusterAdmin(NullLogger.Instance);
        var before = (await admin.ListAsync(CancellationToken.None)).Count;
        var peerUrl = "https://127.0.0.1:1";
        var (key, request) = PoolCertificateAuthority.CreateSigningRequest("tls-joiner");

        // A stranger with no session gets nothing signed, and the cluster is untouched.
        var refused = await Assert.ThrowsAsync<XenApiException>(() =>
            api.InvokeAsync("pool.corral_admit_member", ["OpaqueRef:stranger", "tls-joiner", peerUrl, request], "127.0.0.1", default));
        Assert.Equal(ErrorCodes.SessionInvalid, refused.Code);

        // A pool admin's request for a key its sender does not hold (signed by another key) is refused, before any learner is added.
        var session = (string)(await api.InvokeAsync("session.login_with_password", ["root", "pw", "1.0", "test"], "127.0.0.1", default))!;
        using var victim = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var forger = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var forged = new CertificateRequest(new X500DistinguishedName("CN=tls-joiner"), new PublicKey(victim), HashAlgorithmName.SHA256)
            .CreateSigningRequestPem(X509SignatureGenerator.CreateForECDsa(forger));
        refused = await Assert.ThrowsAsync<XenApiException>(() =>
            api.InvokeAsync("pool.corral_admit_member", [session, "tls-joiner", peerUrl, forged], "127.0.0.1", default));
        Assert.Equal(ErrorCodes.InvalidValue, refused.Code);
        Assert.Equal(before, (await admin.ListAsync(CancellationToken.None)).Count);

        // A pool admin's own request: its key certified by the pool's CA, which comes with it.
        var answer = (Dictionary<string, object?>)(await api.InvokeAsync("pool.corral_admit_member", [session, "tls-joiner", peerUrl, request], "127.0.0.1", default))!;
        using var certificate = X509Certificate2.CreateFromPem((string)answer["certificate"]!, key);
        using var ca = PoolCertificateAuthority.FromPem((string)answer["ca_certificate"]!, (string)answer["ca_key"]!);
        Assert.Equal(host1.Tls.LoadCaCertificate().RawData, ca.Certificate.RawData);
        Assert.True(PoolCertificateAuthority.Verifies(host1.Tls.LoadCaCertificate(), certificate));
        Assert.Equal("CN=tls-joiner", certificate.Subject);
        Assert.Equal(before + 1, (await admin.ListAsync(CancellationToken.None)).Count);
    }

    /// <summary>
    /// A host that starts on its own (a new pool, through <see cref="MembershipTransitionRunner"/>), then joins host1's
    /// pool as <c>pool.join</c> makes it: the master signs its request and adds it as a learner, the host's runner stops
    /// its member, installs the pool's CA and its certificate, and starts the member in the pool's cluster; the master
    /// promotes it.
    /// </summary>
    private async Task<TlsMember> JoinThroughTransitionAsync(TlsMember master, EtcdClusterAdmin admin)
    {
        var host = TlsMember.Prepare(_root, "tls-host3");
        _hosts.Add(host);
        var runner = Runner(host);
        await runner.RunAsync(CancellationToken.None);
        Assert.True(host.Tls.Exists);
        Assert.NotEqual(await File.ReadAllTextAsync(master.Tls.CaCertificateFile), await File.ReadAllTextAsync(host.Tls.CaCertificateFile));

        PoolTlsMaterial material;
        using (var ca = master.Tls.LoadAuthority())
        {
            material = host.CertificateFrom(ca);
        }

        var members = await admin.ListAsync(CancellationToken.None);
        var id = await admin.AddLearnerAsync(host.Options.PeerUrl, CancellationToken.None);
        new MembershipTransition(MembershipChange.Join, 0, EtcdRole.Learner, id, EtcdClusterAdmin.InitialCluster(members, host.Options.Name, host.Options.PeerUrl),
            [master.Options.ClientUrl], "127.0.0.1", "pool-secret", Tls: material).Save(runner.TransitionFile);
        await runner.RunAsync(CancellationToken.None);
        await admin.PromoteAsync(id, TimeSpan.FromSeconds(60), CancellationToken.None);
        // As the promotion through the master leaves it for a voter.
        new EtcdMembership(EtcdRole.Voter, [host.Options.ClientUrl], "", id).Save(host.Options.MembershipFile);
        return host;
    }

    private static MembershipTransitionRunner Runner(TlsMember host, ILogger? logger = null) =>
        new(host.Options, [host.Options.ClientUrl], new ApiOptions { StateDirectory = host.StateDirectory }, host.Tls, logger ?? NullLogger.Instance);
}
