using Corral.Api;
using Corral.Api.Auth;
using Corral.Api.Https;
using Corral.Api.Pool;
using Corral.Api.Sessions;
using Corral.Auth.Ldap;
using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>
/// Active Directory as the pool's external authentication (<c>auth_type=AD</c>, XenCenter's "Join Domain") against a
/// real Samba AD domain controller (<see cref="SambaDcRig"/>) over LDAPS: the join (the pool's computer account made
/// with a password of its own, the administrator's never kept), trust only in the configured CA, xapi's errors, SIDs as
/// subjects, logins in each of AD's name forms through a nested group's subject, account state, and leaving.
/// </summary>
public sealed class ActiveDirectoryTests : IAsyncLifetime
{
    private readonly string _hostRef = OpaqueRef.New();
    private readonly string _state = Path.Combine(Path.GetTempPath(), "corral-ad-test-" + Guid.NewGuid().ToString("N")[..8]);
    private SambaDcRig _dc = null!;
    private ApiFixture _fixture = null!;
    private IPoolDatabase _db = null!;
    private string _root = "";
    private string _pool = "";

    public async Task InitializeAsync()
    {
        _dc = await SambaDcRig.StartAsync();
        try
        {
            await StartFixtureAsync();
        }
        catch
        {
            await _dc.DisposeAsync(); // the controller must not outlive a start that failed (disposing it twice is harmless)
            throw;
        }
    }

    private async Task StartFixtureAsync()
    {
        // The host's state directory exists before its services start, as the agent's does (the first login writes
        // the local credentials there; made by a background service's first sync instead, it raced the login).
        Directory.CreateDirectory(_state);
        _fixture = await ApiFixture.StartAsync(services =>
            {
                services.Configure<ApiOptions>(o => (o.HostRef, o.StateDirectory) = (_hostRef, _state));
                services.AddLdapDirectory();
                // As the agent sets it: the pool's trusted CA certificates (pool.install_ca_certificate), as this host keeps them.
                services.Configure<DirectoryTlsOptions>(o => o.TrustedCertificatesDirectory = Path.Combine(_state, TrustedCaDirectory.DirectoryName));
            },
            provider => provider.GetRequiredService<MasterState>().Set(_hostRef));
        _db = _fixture.Database;
        var tx = new PoolTransaction();
        tx.Create(XenClasses.HostSchema, new Dictionary<string, object?> { ["name_label"] = "h1", ["enabled"] = true }, _hostRef);
        _pool = tx.Create(XenClasses.PoolSchema, new Dictionary<string, object?> { ["name_label"] = "pool", ["master"] = _hostRef }).Ref;
        await _db.CommitAsync(tx, default);
        _root = await _fixture.LoginAsync();
    }

    public async Task DisposeAsync()
    {
        // Each part goes whatever became of the others (a failed test may leave the fixture unable to stop cleanly).
        try
        {
            if (_fixture is not null)
            {
                await _fixture.DisposeAsync();
            }
        }
        finally
        {
            try
            {
                if (_dc is not null)
                {
                    await _dc.DisposeAsync();
                }
            }
            finally
            {
                if (Directory.Exists(_state))
                {
                    Directory.Delete(_state, recursive: true);
                }
            }
        }
    }

    private Task<object?> Call(string method, params object?[] args) => _fixture.Call(method, args);

    private Task<object?> Root(string method, params object?[] args) => Call(method, [_root, .. args]);

    private async Task<IReadOnlyList<string>> Fails(string method, params object?[] args) =>
        (await Assert.ThrowsAsync<XenApiException>(() => Call(method, args))).ErrorDescription;

    private Dictionary<string, object?> Join(string user = "Administrator@corral.lab", string pass = SambaDcRig.AdminPassword, string? ou = null)
    {
        var config = new Dictionary<string, object?> { ["user"] = user, ["pass"] = pass, ["domain-controllers"] = _dc.Address };
        if (ou is not null)
        {
            config["ou"] = ou;
        }

        return config;
    }

    private Task<IReadOnlyList<string>> EnableFails(Dictionary<string, object?> config) =>
        Fails("pool.enable_external_auth", _root, _pool, config, SambaDcRig.Domain, ActiveDirectory.TypeName);

    /// <summary>Installs a CA certificate as <c>xe pool-install-ca-certificate</c> does, then brings this host's copy up to date.</summary>
    private async Task TrustAsync(string name, string directory)
    {
        await Root("pool.install_ca_certificate", name, await File.ReadAllTextAsync(Path.Combine(directory, "ca.pem")));
        await _fixture.Services.GetRequiredService<TrustedCaDirectory>().SyncAsync(default);
    }

    [Fact]
    public async Task Trusted_ca_certificates_are_installed_listed_and_uninstalled_as_xapi_does()
    {
        var pem = await File.ReadAllTextAsync(Path.Combine(_dc.CaDirectory, "ca.pem"));
        Assert.Equal([ErrorCodes.CertificateNameInvalid, "ca.crt"], await Fails("pool.install_ca_certificate", _root, "ca.crt", pem));
        Assert.Equal([ErrorCodes.CertificateNameInvalid, "../ca.pem"], await Fails("pool.install_ca_certificate", _root, "../ca.pem", pem));
        Assert.Equal([ErrorCodes.CertificateCorrupt, "junk.pem"], await Fails("pool.install_ca_certificate", _root, "junk.pem", "not a certificate"));
        await TrustAsync("corral-lab-ca.pem", _dc.CaDirectory);
        Assert.Equal([ErrorCodes.CertificateAlreadyExists, "corral-lab-ca.pem"], await Fails("pool.install_ca_certificate", _root, "corral-lab-ca.pem", pem));
        Assert.Equal(["corral-lab-ca.pem"], ((List<object?>)(await Root("pool.certificate_list"))!).Cast<string>());
        var record = ((Dictionary<string, object?>)(await Root("Certificate.get_all_records"))!).Values.Cast<Dictionary<string, object?>>()
            .Single(c => (string?)c["type"] == "ca");
        Assert.Equal("corral-lab-ca.pem", record["name"]);
        Assert.Equal(OpaqueRef.Null, record["host"]);
        var file = Path.Combine(_state, TrustedCaDirectory.DirectoryName, "corral-lab-ca.pem");
        Assert.Equal(pem.Trim(), (await File.ReadAllTextAsync(file)).Trim());

        await Root("pool.uninstall_ca_certificate", "corral-lab-ca.pem");
        Assert.Equal([ErrorCodes.CertificateDoesNotExist, "corral-lab-ca.pem"], await Fails("pool.uninstall_ca_certificate", _root, "corral-lab-ca.pem"));
        await _fixture.Services.GetRequiredService<TrustedCaDirectory>().SyncAsync(default);
        Assert.False(File.Exists(file));
        Assert.Empty((List<object?>)(await Root("pool.certificate_list"))!);
    }

    [Fact]
    public async Task The_pool_joins_the_domain_and_its_users_log_in_through_their_groups()
    {
        // Refused as xapi refuses: a SAM-form account; a controller whose certificate neither the machine's store nor
        // the pool's trusted CA certificate vouches for; a wrong password; an OU the domain lacks.
        var sam = await EnableFails(Join(user: @"CORRAL\Administrator"));
        Assert.Equal([ErrorCodes.PoolAuthEnableFailed, _hostRef], sam.Take(2));
        Assert.Contains("UPN format", sam[2], StringComparison.Ordinal);
        Assert.Equal([ErrorCodes.PoolAuthEnableFailedUnavailable, _hostRef], (await EnableFails(Join())).Take(2));
        await TrustAsync("other-ca.pem", _dc.OtherCaDirectory);
        Assert.Equal([ErrorCodes.PoolAuthEnableFailedUnavailable, _hostRef], (await EnableFails(Join())).Take(2));
        await Root("pool.uninstall_ca_certificate", "other-ca.pem");
        await TrustAsync("corral-lab-ca.pem", _dc.CaDirectory);
        Assert.Equal([ErrorCodes.PoolAuthEnableFailedWrongCredentials, _hostRef], (await EnableFails(Join(pass: "wrong"))).Take(2));
        Assert.Equal([ErrorCodes.PoolAuthEnableFailedInvalidOu, _hostRef], (await EnableFails(Join(ou: "OU=Nowhere"))).Take(2));
        Assert.Equal("", await Root("host.get_external_auth_type", _hostRef));

        // Joined: the pool's computer account, its password the pool's secret; the administrator's kept nowhere.
        await Root("pool.enable_external_auth", _pool, Join(), SambaDcRig.Domain, "AD");
        var configuration = (Dictionary<string, object?>)(await Root("host.get_external_auth_configuration", _hostRef))!;
        Assert.Equal(SambaDcRig.Workgroup, configuration["workgroup"]);
        var computer = (string)configuration["netbios_name"]!;
        Assert.Matches("^CORRAL-[0-9A-F]{8}$", computer);
        Assert.False(configuration.ContainsKey("pass"));
        var secret = await _db.Leases.GetValueAsync(ExternalAuth.BindPasswordKey, default);
        Assert.False(string.IsNullOrEmpty(secret));
        Assert.NotEqual(SambaDcRig.AdminPassword, secret);
        Assert.Contains("userAccountControl: 4096", await _dc.ToolAsync("computer", "show", computer), StringComparison.Ordinal);

        await _dc.ToolAsync("user", "create", "alice", "Alice-pw1!", "--given-name=Alice", "--surname=Liddell");
        await _dc.ToolAsync("user", "create", "bob", "Bob-pw1!x");
        await _dc.ToolAsync("group", "add", "corral-ops");
        await _dc.ToolAsync("group", "add", "hypervisor-admins");
        await _dc.ToolAsync("group", "addmembers", "corral-ops", "alice");
        await _dc.ToolAsync("group", "addmembers", "hypervisor-admins", "corral-ops");

        // Subjects are SIDs; the nested group's subject lets alice in, not bob.
        var aliceSid = (string)(await Root("auth.get_subject_identifier", @"CORRAL\alice"))!;
        Assert.StartsWith("S-1-5-21-", aliceSid, StringComparison.Ordinal);
        Assert.Equal(aliceSid, await Root("auth.get_subject_identifier", "alice@corral.lab"));
        var outer = (string)(await Root("auth.get_subject_identifier", "hypervisor-admins"))!;
        var groupInfo = (Dictionary<string, object?>)(await Root("auth.get_subject_information_from_identifier", outer))!;
        Assert.Equal(@"CORRAL\hypervisor-admins", groupInfo["subject-name"]);
        Assert.Equal("true", groupInfo["subject-is-group"]);
        var subject = (string)(await Root("subject.create", new Dictionary<string, object?> { ["subject_identifier"] = outer, ["other_config"] = groupInfo }))!;
        await Root("subject.add_to_roles", subject, RoleTable.FindByNameLabel("vm-operator")!.Ref);
        Assert.Contains(outer, ((List<object?>)(await Root("auth.get_group_membership", aliceSid))!).Cast<string>());

        var info = (Dictionary<string, object?>)(await Root("auth.get_subject_information_from_identifier", aliceSid))!;
        Assert.Equal(@"CORRAL\alice", info["subject-name"]);
        Assert.Equal("alice@corral.lab", info["subject-upn"]);
        Assert.Equal("false", info["subject-account-disabled"]);
        Assert.Equal("false", info["subject-is-group"]);

        foreach (var name in new[] { @"CORRAL\alice", "alice@corral.lab", "alice" })
        {
            var session = (string)(await Call("session.login_with_password", name, "Alice-pw1!", "1.0", "test"))!;
            Assert.Equal(aliceSid, await Call("session.get_auth_user_sid", session, session));
            Assert.Equal(name, await Call("session.get_auth_user_name", session, session)); // as typed, as xapi keeps it
            await Call("session.logout", session);
        }

        Assert.Equal(ErrorCodes.SessionAuthenticationFailed, (await Fails("session.login_with_password", @"CORRAL\alice", "wrong"))[0]);
        Assert.Equal(ErrorCodes.SessionAuthorizationFailed, (await Fails("session.login_with_password", "bob", "Bob-pw1!x"))[0]);

        // A disabled account: its state is read, and it logs in no more.
        await _dc.ToolAsync("user", "disable", "alice");
        info = (Dictionary<string, object?>)(await Root("auth.get_subject_information_from_identifier", aliceSid))!;
        Assert.Equal("true", info["subject-account-disabled"]);
        Assert.NotEmpty(await Fails("session.login_with_password", "alice", "Alice-pw1!"));

        // Leaving with an account that may: the computer account goes.
        await Root("pool.disable_external_auth", _pool, new Dictionary<string, object?> { ["user"] = "Administrator@corral.lab", ["pass"] = SambaDcRig.AdminPassword });
        Assert.Equal("", await Root("host.get_external_auth_type", _hostRef));
        Assert.Null(await _db.Leases.GetValueAsync(ExternalAuth.BindPasswordKey, default));
        await Assert.ThrowsAsync<InvalidOperationException>(() => _dc.ToolAsync("computer", "show", computer));
    }
}
