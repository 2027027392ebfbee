using Corral.Agent;
using Corral.Agent.Hosting;
using Corral.Agent.Membership;
using Corral.Agent.Operations;
using Corral.Agent.Vms;
using Corral.Api;
using Corral.Api.Dispatch;
using Corral.Api.Https;
using Corral.Api.Methods;
using Corral.Api.Sessions;
using Corral.Hypervisor.Qemu;
using Corral.Model;
using Corral.Networking;
using Corral.PoolDatabase;
using Corral.PoolDatabase.Etcd;
using Corral.PoolDatabase.Etcd.Tls;
using Corral.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>
/// The pool's credentials rotated through xapi's messages, over a real TLS etcd member with the agent's own handlers and
/// operation worker behind the API: <c>host.refresh_server_certificate</c> (the record replaced, the old certificate
/// revoked and refused by the member, the agent's connection unbroken), an ejected host's certificate revoked,
/// <c>pool.certificate_sync</c>, and <c>pool.rotate_secret</c> (the old secret accepted until every host has the new one).
/// </summary>
public sealed class CredentialRotationTests : IAsyncLifetime
{
    private readonly string _root = Directory.CreateTempSubdirectory("corral-credentials-").FullName;
    private readonly List<ILease> _leases = [];
    private TlsMember _member = null!;
    private ServiceProvider _services = null!;
    private ApiDispatcher _api = null!;
    private IPoolDatabase _db = null!;
    private HostIdentity _host = null!;
    private string _session = "";
    private string _otherHost = "";
    private string _otherMetrics = "";
    private string _pool = "";

    public async Task InitializeAsync()
    {
        _member = await TlsMember.StartNewPoolAsync(_root, "cred-host1");
        var state = Path.Combine(_root, "agent-state");
        _host = HostIdentity.LoadOrCreate(state);
        var services = TestAgentServices.Create(_root, state, _host, o =>
        {
            o.Endpoints = _member.Options.ClientUrl;
            o.CertificateDirectory = _member.Tls.Directory;
        });
        services.AddSingleton(TimeProvider.System);
        // As the agent registers them on a host that runs an etcd member.
        var tls = new PoolTlsHost(_member.Tls, _member.Options);
        services.AddSingleton(sp => ActivatorUtilities.CreateInstance<PoolTlsSync>(sp, tls));
        services.AddSingleton<IHostOperationHandler>(sp => ActivatorUtilities.CreateInstance<CertificateRefreshHandler>(sp, tls));
        services.AddHostedService<HostOperationWorker>();
        _services = services.BuildServiceProvider();
        _db = _services.GetRequiredService<IPoolDatabase>();
        await RecordHostsAsync();
        foreach (var hosted in _services.GetServices<IHostedService>())
        {
            await hosted.StartAsync(default);
        }

        var sessions = _services.GetRequiredService<SessionService>();
        await sessions.SetPasswordAsync("root", "pw", default);
        await sessions.RefreshLocalCredentialsAsync(default);
        _api = _services.GetRequiredService<ApiDispatcher>();
        _session = (string)(await _api.InvokeAsync("session.login_with_password", ["root", "pw", "1.0", "test"], "127.0.0.1", default))!;
    }

    public async Task DisposeAsync()
    {
        foreach (var hosted in _services.GetServices<IHostedService>())
        {
            await hosted.StopAsync(default);
        }

        await _services.DisposeAsync();
        await _member.DisposeAsync();
        Directory.Delete(_root, recursive: true);
    }

    private Task<object?> S(string method, params object?[] args) => _api.InvokeAsync(method, [_session, .. args], "127.0.0.1", default);

    private async Task<XenApiException> Fails(string method, params object?[] args) => await Assert.ThrowsAsync<XenApiException>(() => S(method, args));

    /// <summary>The pool, this host (live) and a second host, not live until a test makes it so.</summary>
    private async Task RecordHostsAsync()
    {
        var tx = new PoolTransaction();
        tx.Create(XenClasses.HostMetricsSchema, new Dictionary<string, object?> { ["memory_total"] = 8L << 30 }, _host.MetricsRef);
        tx.Create(XenClasses.HostSchema, new Dictionary<string, object?> { ["uuid"] = _host.Uuid, ["name_label"] = "h1", ["metrics"] = _host.MetricsRef, ["enabled"] = true }, _host.Ref);
        var otherMetrics = tx.Create(XenClasses.HostMetricsSchema);
        _otherMetrics = otherMetrics.Ref;
        _otherHost = tx.Create(XenClasses.HostSchema, new Dictionary<string, object?> { ["name_label"] = "h2", ["metrics"] = otherMetrics.Ref, ["enabled"] = true }).Ref;
        _pool = tx.Create(XenClasses.PoolSchema, new Dictionary<string, object?> { ["name_label"] = "pool", ["master"] = _host.Ref }).Ref;
        await _db.CommitAsync(tx, default);
        await MakeLiveAsync(_host.MetricsRef, _host.Ref);
    }

    private async Task MakeLiveAsync(string metrics, string host)
    {
        var lease = await _db.Leases.AcquireAsync(TimeSpan.FromSeconds(30), default);
        _leases.Add(lease);
        await _db.Leases.PutAsync(lease, PoolKeys.LiveKey(metrics), host, default);
    }

    private async Task<List<XenObject>> InternalRecordsAsync(string host) =>
        (await _db.GetAllAsync(XenApi.Certificate.ClassName, default))
            .Where(c => c.Get(XenApi.Certificate.Host) == host && c.Get(XenApi.Certificate.Type) == CertificateType.HostInternal).ToList();

    [Fact]
    public async Task Refreshing_a_hosts_certificate_records_the_new_one_and_revokes_the_old_one_without_breaking_the_pool_database()
    {
        var sync = _services.GetRequiredService<PoolTlsSync>();
        await sync.SyncAsync(default);
        var before = Assert.Single(await InternalRecordsAsync(_host.Ref));
        using (var current = _member.Tls.LoadCertificate())
        {
            Assert.True(Corral.Api.Client.Tls.CertificateFingerprint.Same(before.Get(XenApi.Certificate.Fingerprint),
                Corral.Api.Client.Tls.CertificateFingerprint.Sha256(current)));
        }

        var oldCopy = Directory.CreateDirectory(Path.Combine(_root, "old-copy")).FullName;
        File.Copy(_member.Tls.CertificateFile, Path.Combine(oldCopy, "host.pem"));
        File.Copy(_member.Tls.KeyFile, Path.Combine(oldCopy, "host.key"));
        string[] withOld = [$"--cacert={_member.Tls.CaCertificateFile}", $"--cert={Path.Combine(oldCopy, "host.pem")}", $"--key={Path.Combine(oldCopy, "host.key")}"];
        var oldSerial = PoolCertificateRevocations.SerialOf(await File.ReadAllTextAsync(Path.Combine(oldCopy, "host.pem")))!;
        var pid = _member.Member.RunningPid();

        await S("host.refresh_server_certificate", _host.Ref).WaitAsync(TimeSpan.FromSeconds(60));

        // One record, for the new certificate; the old one revoked in the pool database and in this host's list.
        var after = Assert.Single(await InternalRecordsAsync(_host.Ref));
        Assert.NotEqual(before.Ref, after.Ref);
        using var refreshed = _member.Tls.LoadCertificate();
        Assert.True(Corral.Api.Client.Tls.CertificateFingerprint.Same(after.Get(XenApi.Certificate.Fingerprint),
            Corral.Api.Client.Tls.CertificateFingerprint.Sha256(refreshed)));
        Assert.Contains(oldSerial, await PoolCertificateRevocations.ReadAsync(_db, default));
        Assert.Contains(oldSerial, _member.Tls.RevokedSerials());

        // The member, not restarted, refuses the old certificate and serves the new one; the agent's connection goes on.
        Assert.Equal(pid, _member.Member.RunningPid());
        var (code, output) = await _member.EtcdctlAsync([.. withOld, "get", "/corral/", "--prefix", "--keys-only"]);
        Assert.True(code != 0, output);
        (code, output) = await _member.EtcdctlAsync([.. TlsMember.With(_member.Tls), "put", "/corral/after-refresh", "ok"]);
        Assert.True(code == 0, output);
        Assert.Equal("ok", await _db.Leases.GetValueAsync("/corral/after-refresh", default));

        // Refused: a host that is not live, a reference that is no host's.
        Assert.Equal(ErrorCodes.HostOffline, (await Fails("host.refresh_server_certificate", _otherHost)).Code);
        Assert.Equal(ErrorCodes.HandleInvalid, (await Fails("host.refresh_server_certificate", "OpaqueRef:nonexistent")).Code);

        // pool.certificate_sync: every live host rewrites its files from the database (here, a list lost on disk).
        File.Delete(_member.Tls.RevocationListFile);
        await S("pool.certificate_sync").WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Contains(oldSerial, _member.Tls.RevokedSerials());
    }

    [Fact]
    public async Task An_ejected_hosts_etcd_certificate_is_revoked_with_its_records()
    {
        // The other host's record as its agent would have made it, with a certificate of the pool's CA.
        using var ca = _member.Tls.LoadAuthority();
        var (_, request) = PoolCertificateAuthority.CreateSigningRequest("h2");
        using var certificate = ca.Issue(request, "h2", ["h2"], TimeProvider.System);
        var tx = new PoolTransaction();
        var record = tx.Create(XenApi.Certificate.Schema);
        record.Set(XenApi.Certificate.Type, CertificateType.HostInternal);
        record.Set(XenApi.Certificate.Host, _otherHost);
        tx.PutKey(PoolKeys.CertificatePem(record.Ref), certificate.ExportCertificatePem());
        await _db.CommitAsync(tx, default);

        // As pool.eject removes the host's records (PoolMembershipMethods): its certificates revoked first.
        await PoolCertificateRevocations.RevokeHostAsync(_db, await InternalRecordsAsync(_otherHost), default);
        var serial = PoolCertificateRevocations.Normalize(certificate.SerialNumber);
        Assert.Contains(serial, await PoolCertificateRevocations.ReadAsync(_db, default));
        await _services.GetRequiredService<PoolTlsSync>().SyncAsync(default);
        Assert.Contains(serial, _member.Tls.RevokedSerials());
    }

    [Fact]
    public async Task Rotating_the_pool_secret_keeps_the_old_one_accepted_until_every_host_has_the_new_one()
    {
        var sessions = _services.GetRequiredService<SessionService>();
        var local = _services.GetRequiredService<LocalCredentials>();
        var oldSecret = local.PoolSecret!;

        // xapi's refusals: a host that cannot be reached; HA on.
        var refused = await Fails("pool.rotate_secret");
        Assert.Equal(ErrorCodes.CannotContactHost, refused.Code);
        Assert.Equal(oldSecret, await _db.Leases.GetValueAsync(SessionService.PoolSecretKey, default));
        await MakeLiveAsync(_otherMetrics, _otherHost);
        await SetHaAsync(true);
        Assert.Equal(ErrorCodes.HaIsEnabled, (await Fails("pool.rotate_secret")).Code);
        await SetHaAsync(false);

        // The other host, as its agent runs: its own copy of the secrets, taking the pool's when it syncs.
        var otherLocal = new LocalCredentials(Microsoft.Extensions.Options.Options.Create(new ApiOptions { StateDirectory = Directory.CreateDirectory(Path.Combine(_root, "h2")).FullName }));
        otherLocal.RememberPoolSecrets(oldSecret, null);
        var other = new PoolSecretRotation(_db, otherLocal, _services.GetRequiredService<Placement>(),
            Microsoft.Extensions.Options.Options.Create(new ApiOptions { HostRef = _otherHost }), NullLogger<PoolSecretRotation>.Instance);

        var rotating = S("pool.rotate_secret");
        var newSecret = await WaitForAsync(async () =>
            await _db.Leases.GetValueAsync(PoolSecretRotation.PreviousKey, default) is not null
                ? await _db.Leases.GetValueAsync(SessionService.PoolSecretKey, default) : null);
        Assert.NotEqual(oldSecret, newSecret);
        // While the other host has not taken it: the call waits, and both secrets get in (the other host still sends the old one).
        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.False(rotating.IsCompleted);
        Assert.NotNull(await sessions.SlaveLoginAsync(oldSecret, "127.0.0.2", default));
        Assert.NotNull(await sessions.SlaveLoginAsync(newSecret, "127.0.0.2", default));
        Assert.Equal(newSecret, local.PoolSecret);

        await other.SyncAsync(default);
        await rotating.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(newSecret, otherLocal.PoolSecret);
        Assert.Null(await _db.Leases.GetValueAsync(PoolSecretRotation.PreviousKey, default));
        var failed = await Assert.ThrowsAsync<XenApiException>(() => sessions.SlaveLoginAsync(oldSecret, "127.0.0.3", default));
        Assert.Equal(ErrorCodes.SessionAuthenticationFailed, failed.Code);
        Assert.NotNull(await sessions.SlaveLoginAsync(newSecret, "127.0.0.3", default));

        // A host that does not take the new secret in time fails the call; the rotation ends when it does take it.
        _services.GetRequiredService<PoolSecretRotation>().Timeout = TimeSpan.FromSeconds(2);
        var timedOut = await Fails("pool.rotate_secret");
        Assert.Equal(ErrorCodes.CannotContactHost, timedOut.Code);
        Assert.Equal(_otherHost, timedOut.Parameters[0]);
        Assert.NotNull(await sessions.SlaveLoginAsync(newSecret, "127.0.0.4", default));
        await other.SyncAsync(default);
        Assert.Null(await _db.Leases.GetValueAsync(PoolSecretRotation.PreviousKey, default));
        // This host drops the previous secret from its copy at its next sync (every 10 s in the agent).
        await _services.GetRequiredService<PoolTlsSync>().SyncAsync(default);
        failed = await Assert.ThrowsAsync<XenApiException>(() => sessions.SlaveLoginAsync(newSecret, "127.0.0.4", default));
        Assert.Equal(ErrorCodes.SessionAuthenticationFailed, failed.Code);
    }

    private async Task SetHaAsync(bool enabled) =>
        await _db.UpdateAsync([(XenClasses.Pool, _pool)], (objs, tx) =>
        {
            var pool = objs[0].Clone();
            pool.Set(XenApi.Pool.HaEnabled, enabled);
            tx.Update(pool);
        }, default);

    private static async Task<string> WaitForAsync(Func<Task<string?>> probe)
    {
        for (var i = 0; i < 100; i++)
        {
            if (await probe() is { } value)
            {
                return value;
            }

            await Task.Delay(100);
        }

        throw new TimeoutException("the rotation did not begin");
    }
}
