using Corral.Api;
using Corral.Api.Auth;
using Corral.Api.Dispatch;
using Corral.Api.Pool;
using Corral.Api.Sessions;
using Corral.Auth.Ldap;
using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>
/// External authentication against a real OpenLDAP directory (<see cref="SlapdRig"/>) and xapi's RBAC over a real etcd:
/// <c>pool.enable_external_auth</c> with its errors, the <c>auth.*</c> questions, logins of the directory's users through
/// the pool's subjects (a user's own, or a group's, nested groups included), and every call checked against the
/// session's permissions before any work.
/// </summary>
public sealed class DirectoryAuthTests : IAsyncLifetime
{
    private const string AdminDn = "cn=admin," + SlapdRig.BaseDn;
    private readonly string _hostRef = OpaqueRef.New();
    private SlapdRig _slapd = null!;
    private ApiFixture _fixture = null!;
    private IPoolDatabase _db = null!;
    private string _root = "";
    private string _pool = "";

    public async Task InitializeAsync()
    {
        _slapd = await SlapdRig.StartAsync(
            [("alice", "alice-pw"), ("bob", "bob-pw"), ("carol", "carol-pw"), ("dave", "dave-pw")],
            [
                ("readers", [SlapdRig.UserDn("alice")]),
                ("vm-ops", [SlapdRig.UserDn("bob")]),
                ("staff", [SlapdRig.GroupDn("vm-ops")]),
                ("idle", [SlapdRig.UserDn("dave")]),
            ]);
        _fixture = await ApiFixture.StartAsync(services =>
            {
                services.Configure<ApiOptions>(o => o.HostRef = _hostRef);
                services.AddLdapDirectory();
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
        await _fixture.DisposeAsync();
        await _slapd.DisposeAsync();
    }

    private Task<object?> Call(string method, params object?[] args) => _fixture.Call(method, args);

    private Task<object?> Root(string method, params object?[] args) => Call(method, [_root, .. args]);

    private async Task<IReadOnlyList<string>> Fails(string method, params object?[] args) =>
        (await Assert.ThrowsAsync<XenApiException>(() => Call(method, args))).ErrorDescription;

    private Dictionary<string, object?> Config(string? pass = "admin-pw", string baseDn = SlapdRig.BaseDn) => pass is null
        ? new() { ["base-dn"] = baseDn }
        : new() { ["base-dn"] = baseDn, ["user"] = AdminDn, ["pass"] = pass };

    private Task EnableAsync() => Root("pool.enable_external_auth", _pool, Config(), _slapd.Uri, LdapDirectory.TypeName);

    private async Task<string> SubjectAsync(string name, params string[] roles)
    {
        var identifier = (string)(await Root("auth.get_subject_identifier", name))!;
        var information = await Root("auth.get_subject_information_from_identifier", identifier);
        var subject = (string)(await Root("subject.create", new Dictionary<string, object?> { ["subject_identifier"] = identifier, ["other_config"] = information }))!;
        foreach (var role in roles)
        {
            await Root("subject.add_to_roles", subject, RoleTable.FindByNameLabel(role)!.Ref);
        }

        return subject;
    }

    [Fact]
    public async Task Enabling_checks_the_directory_first_and_keeps_its_password_out_of_the_hosts_records()
    {
        Assert.Equal([ErrorCodes.AuthUnknownType, "PAM"], await Fails("pool.enable_external_auth", _root, _pool, Config(), "corp.example.com", "PAM"));
        var missing = await Fails("pool.enable_external_auth", _root, _pool, new Dictionary<string, object?>(), _slapd.Uri, "LDAP");
        Assert.Equal([ErrorCodes.PoolAuthEnableFailed, _hostRef], missing.Take(2));
        Assert.Contains("base-dn", missing[2], StringComparison.Ordinal);
        Assert.Equal([ErrorCodes.PoolAuthEnableFailedWrongCredentials, _hostRef],
            (await Fails("pool.enable_external_auth", _root, _pool, Config("wrong"), _slapd.Uri, "LDAP")).Take(2));
        Assert.Equal([ErrorCodes.PoolAuthEnableFailedUnavailable, _hostRef],
            (await Fails("pool.enable_external_auth", _root, _pool, Config(), "ldap://127.0.0.1:9", "LDAP")).Take(2));
        var wrongBase = await Fails("pool.enable_external_auth", _root, _pool, Config(baseDn: "dc=elsewhere"), _slapd.Uri, "LDAP");
        Assert.Equal(ErrorCodes.PoolAuthEnableFailedUnavailable, wrongBase[0]);
        Assert.Equal([ErrorCodes.AuthIsDisabled], await Fails("auth.get_subject_identifier", _root, "alice"));
        Assert.Equal("", await Root("host.get_external_auth_type", _hostRef));

        await EnableAsync();
        Assert.Equal("LDAP", await Root("host.get_external_auth_type", _hostRef));
        Assert.Equal(_slapd.Uri, await Root("host.get_external_auth_service_name", _hostRef));
        var configuration = (Dictionary<string, object?>)(await Root("host.get_external_auth_configuration", _hostRef))!;
        Assert.Equal(AdminDn, configuration["user"]);
        Assert.False(configuration.ContainsKey("pass"));
        Assert.Equal("admin-pw", await _db.Leases.GetValueAsync(ExternalAuth.BindPasswordKey, default));
        Assert.Equal([ErrorCodes.PoolAuthAlreadyEnabled, _hostRef], await Fails("pool.enable_external_auth", _root, _pool, Config(), _slapd.Uri, "LDAP"));

        await Root("pool.disable_external_auth", _pool, new Dictionary<string, object?>());
        Assert.Equal("", await Root("host.get_external_auth_type", _hostRef));
        Assert.Null(await _db.Leases.GetValueAsync(ExternalAuth.BindPasswordKey, default));

        // Anonymous searches, the slapd default: no account configured.
        await Root("pool.enable_external_auth", _pool, Config(pass: null), _slapd.Uri, "LDAP");
        Assert.Equal(SlapdRig.UserDn("alice"), await Root("auth.get_subject_identifier", "alice"));
    }

    [Fact]
    public async Task The_directory_answers_who_is_who_and_which_groups_a_user_is_in_nested_ones_included()
    {
        await EnableAsync();
        Assert.Equal(SlapdRig.UserDn("bob"), await Root("auth.get_subject_identifier", "bob"));
        Assert.Equal(SlapdRig.GroupDn("staff"), await Root("auth.get_subject_identifier", "staff"));
        Assert.Equal([ErrorCodes.SubjectCannotBeResolved], await Fails("auth.get_subject_identifier", _root, "mallory"));
        Assert.Equal([ErrorCodes.SubjectCannotBeResolved], await Fails("auth.get_subject_identifier", _root, "*"));

        var bob = (Dictionary<string, object?>)(await Root("auth.get_subject_information_from_identifier", SlapdRig.UserDn("bob")))!;
        Assert.Equal("bob", bob["subject-name"]);
        Assert.Equal("bob Tester", bob["subject-displayname"]);
        Assert.Equal("false", bob["subject-is-group"]);
        var staff = (Dictionary<string, object?>)(await Root("auth.get_subject_information_from_identifier", SlapdRig.GroupDn("staff")))!;
        Assert.Equal("true", staff["subject-is-group"]);
        Assert.Equal([ErrorCodes.SubjectCannotBeResolved],
            await Fails("auth.get_subject_information_from_identifier", _root, "uid=nobody,ou=people," + SlapdRig.BaseDn));

        var groups = ((List<object?>)(await Root("auth.get_group_membership", SlapdRig.UserDn("bob")))!).Cast<string>().ToList();
        Assert.Equal([SlapdRig.GroupDn("vm-ops"), SlapdRig.GroupDn("staff")], groups);
    }

    [Fact]
    public async Task Directory_users_log_in_through_the_pools_subjects_and_get_their_roles_permissions()
    {
        await EnableAsync();
        var readers = await SubjectAsync("readers", "read-only");
        await SubjectAsync("staff", "vm-operator");
        await SubjectAsync("dave");

        Assert.Equal([ErrorCodes.SessionAuthenticationFailed, "alice", "Authentication failure"], await Fails("session.login_with_password", "alice", "wrong"));
        Assert.Equal([ErrorCodes.SessionAuthenticationFailed, "alice", "Authentication failure"], await Fails("session.login_with_password", "alice", ""));
        Assert.Equal([ErrorCodes.SessionAuthenticationFailed, "mallory", "Authentication failure"], await Fails("session.login_with_password", "mallory", "x"));
        var carol = await Fails("session.login_with_password", "carol", "carol-pw");
        Assert.Equal([ErrorCodes.SessionAuthorizationFailed, "carol"], carol.Take(2));
        Assert.Contains("has no access rights in this pool", carol[2], StringComparison.Ordinal);
        var dave = await Fails("session.login_with_password", "dave", "dave-pw");
        Assert.Equal([ErrorCodes.RbacPermissionDenied, "dave"], dave.Take(2));
        Assert.Contains("has no roles in this pool", dave[2], StringComparison.Ordinal);

        var alice = (string)(await Call("session.login_with_password", "alice", "alice-pw", "1.0", "test"))!;
        Assert.Equal(false, await Call("session.get_is_local_superuser", alice, alice));
        Assert.Equal(SlapdRig.UserDn("alice"), await Call("session.get_auth_user_sid", alice, alice));
        Assert.Equal("alice", await Call("session.get_auth_user_name", alice, alice));
        Assert.Equal(readers, await Call("session.get_subject", alice, alice));
        var permissions = ((List<object?>)(await Call("session.get_rbac_permissions", alice, alice))!).Cast<string>().ToList();
        Assert.Contains("read-only", permissions);
        Assert.Contains("vm.get_all_records", permissions);
        Assert.DoesNotContain("vm.start", permissions);

        // Bob is in vm-ops, which is in staff: staff's role is his.
        var bob = (string)(await Call("session.login_with_password", "bob", "bob-pw"))!;
        Assert.Contains("vm-operator", ((List<object?>)(await Call("session.get_rbac_permissions", bob, bob))!).Cast<string>());

        // Who is logged in through the directory, and ending the sessions a group let in.
        var identifiers = ((List<object?>)(await Root("session.get_all_subject_identifiers"))!).Cast<string>().ToList();
        Assert.Contains(SlapdRig.UserDn("alice"), identifiers);
        Assert.Contains(SlapdRig.GroupDn("readers"), identifiers);
        await Root("session.logout_subject_identifier", SlapdRig.GroupDn("readers"));
        Assert.Equal(ErrorCodes.SessionInvalid, (await Fails("VM.get_all", alice))[0]);
        await Call("VM.get_all", bob);
    }

    [Fact]
    public async Task Http_basic_credentials_on_rrd_updates_are_checked_by_the_login_rules_directory_users_included()
    {
        var sessions = _fixture.Services.GetRequiredService<SessionService>();
        Task<bool> Basic(string user, string password) => sessions.BasicCredentialsAllowAsync(user, password, "192.0.2.7", "rrd_updates (HTTP Basic)", default);

        // Before external authentication: the directory's users are unknown here.
        Assert.False(await Basic("alice", "alice-pw"));
        await EnableAsync();
        Assert.False(await Basic("alice", "alice-pw"));
        await SubjectAsync("readers", "read-only");
        await SubjectAsync("dave");

        Assert.True(await Basic("alice", "alice-pw"));
        Assert.False(await Basic("alice", "wrong"));
        Assert.False(await Basic("carol", "carol-pw"));
        Assert.False(await Basic("dave", "dave-pw"));
        Assert.True(await Basic("root", "pw"));

        // A check, not a login: no session is left behind.
        Assert.DoesNotContain(await _db.GetAllAsync(XenClasses.Session, default), x => x.Get(XenApi.Session.AuthUserName) == "alice");
    }

    [Fact]
    public async Task Each_call_is_checked_against_the_sessions_permissions_before_any_work()
    {
        await EnableAsync();
        await SubjectAsync("readers", "read-only");
        await SubjectAsync("staff", "vm-operator");
        var vm = (string)(await Root("VM.create", new Dictionary<string, object?> { ["name_label"] = "web" }))!;
        var alice = (string)(await Call("session.login_with_password", "alice", "alice-pw"))!;
        var bob = (string)(await Call("session.login_with_password", "bob", "bob-pw"))!;

        Assert.Contains(vm, ((List<object?>)(await Call("VM.get_all", alice))!).Cast<string>());
        Assert.Equal("web", await Call("VM.get_name_label", alice, vm));
        Assert.Equal([ErrorCodes.RbacPermissionDenied, "vm.create",
            "No permission in user session. (Roles with this permission: pool-admin, pool-operator, vm-power-admin, vm-admin)"],
            await Fails("VM.create", alice, new Dictionary<string, object?> { ["name_label"] = "x" }));
        Assert.Equal(ErrorCodes.RbacPermissionDenied, (await Fails("VM.set_name_label", alice, vm, "renamed"))[0]);
        var tasks = ((List<object?>)(await Root("task.get_all"))!).Count;
        Assert.Equal([ErrorCodes.RbacPermissionDenied, "vm.start"], (await Fails("Async.VM.start", alice, vm, false, false)).Take(2));
        Assert.Equal(tasks, ((List<object?>)(await Root("task.get_all"))!).Count);
        Assert.Equal("web", await Root("VM.get_name_label", vm));

        // A vm-operator may start VMs (this one fails for want of a host to run on, past the check) but not destroy or move them.
        var start = await Fails("VM.start", bob, vm, false, false);
        Assert.NotEqual(ErrorCodes.RbacPermissionDenied, start[0]);
        Assert.Equal([ErrorCodes.RbacPermissionDenied, "vm.destroy"], (await Fails("VM.destroy", bob, vm)).Take(2));
        Assert.Equal([ErrorCodes.RbacPermissionDenied, "vm.pool_migrate"], (await Fails("VM.pool_migrate", bob, vm, _hostRef, new Dictionary<string, object?>())).Take(2));

        // A guarded map key has its own permission: a vm-operator may file VMs in folders, not set other keys.
        await Call("VM.add_to_other_config", bob, vm, "folder", "/web");
        Assert.Equal([ErrorCodes.RbacPermissionDenied, "vm.add_to_other_config"], (await Fails("VM.add_to_other_config", bob, vm, "owner", "bob")).Take(2));
        Assert.Equal([ErrorCodes.RbacPermissionDenied, "pool.disable_external_auth"],
            (await Fails("pool.disable_external_auth", bob, _pool, new Dictionary<string, object?>())).Take(2));
    }

    [Fact]
    public async Task Sessions_end_once_the_directory_no_longer_vouches_for_their_user_and_suspended_accounts_cannot_log_in()
    {
        await EnableAsync();
        await SubjectAsync("readers", "read-only");
        await SubjectAsync("staff", "vm-operator");
        await SubjectAsync("idle", "read-only");
        var alice = (string)(await Call("session.login_with_password", "alice", "alice-pw"))!;
        var bob = (string)(await Call("session.login_with_password", "bob", "bob-pw"))!;
        var dave = (string)(await Call("session.login_with_password", "dave", "dave-pw"))!;
        var validatedAt = (DateTime)(await Call("session.get_validation_time", dave, dave))!;

        // Alice leaves the readers; bob's account expires (shadowExpire: day 1 of 1970); dave stays as he was.
        await _slapd.ModifyAsync(SlapdRig.GroupDn("readers"), SlapdRig.Change(System.DirectoryServices.Protocols.DirectoryAttributeOperation.Replace, "member",
            SlapdRig.UserDn("carol")));
        await _slapd.ModifyAsync(SlapdRig.UserDn("bob"), SlapdRig.Change(System.DirectoryServices.Protocols.DirectoryAttributeOperation.Add, "objectClass", "shadowAccount"),
            SlapdRig.Change(System.DirectoryServices.Protocols.DirectoryAttributeOperation.Add, "shadowExpire", "1"));

        // The directory still binds bob, but his account is expired: no new session.
        var refused = await Fails("session.login_with_password", "bob", "bob-pw");
        Assert.Equal([ErrorCodes.SessionAuthorizationFailed, "bob"], refused.Take(2));
        Assert.Contains("account expired", refused[2], StringComparison.Ordinal);

        // Sessions not yet due for revalidation are left alone.
        var revalidation = _fixture.Services.GetRequiredService<DirectorySessionRevalidation>();
        Assert.Equal(0, await revalidation.RevalidateAsync(DateTime.UtcNow.AddMinutes(20), default));
        await Call("VM.get_all", alice);
        await Call("VM.get_all", bob);

        // Due (past 30 minutes and its spread): alice and bob lose theirs, dave's is renewed.
        var later = DateTime.UtcNow.AddMinutes(34);
        Assert.Equal(2, await revalidation.RevalidateAsync(later, default));
        Assert.Equal(ErrorCodes.SessionInvalid, (await Fails("VM.get_all", alice))[0]);
        Assert.Equal(ErrorCodes.SessionInvalid, (await Fails("VM.get_all", bob))[0]);
        await Call("VM.get_all", dave);
        var renewedAt = (DateTime)(await Call("session.get_validation_time", dave, dave))!;
        Assert.True(renewedAt > validatedAt.AddMinutes(30), $"validation time {renewedAt:O}, was {validatedAt:O}");
        await Root("VM.get_all");
    }

    [Fact]
    public async Task Turning_external_authentication_off_ends_the_directory_users_sessions()
    {
        await EnableAsync();
        await SubjectAsync("readers", "read-only");
        var alice = (string)(await Call("session.login_with_password", "alice", "alice-pw"))!;
        await Root("pool.disable_external_auth", _pool, new Dictionary<string, object?>());
        Assert.Equal(ErrorCodes.SessionInvalid, (await Fails("VM.get_all", alice))[0]);
        Assert.Equal(ErrorCodes.SessionAuthenticationFailed, (await Fails("session.login_with_password", "alice", "alice-pw"))[0]);
        await Root("VM.get_all");
    }
}
