using Corral.Api;
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
/// Many directory logins and subject lookups at the same moment against a real slapd (<see cref="SlapdRig"/>), as when
/// several users log in together or several <c>xe subject-add</c> run side by side: each opens its own LDAP connection,
/// and every one must succeed (the lab once saw "The LDAP server is unavailable" from three at once on a busy machine),
/// while wrong passwords among them stay plain authentication failures.
/// </summary>
public sealed class DirectoryConcurrencyTests : IAsyncLifetime
{
    private const int Users = 24;
    private readonly string _hostRef = OpaqueRef.New();
    private SlapdRig _slapd = null!;
    private ApiFixture _fixture = null!;
    private string _root = "";
    private string _pool = "";

    private static string User(int i) => $"user{i:D2}";

    public async Task InitializeAsync()
    {
        var users = Enumerable.Range(0, Users).Select(i => (User(i), User(i) + "-pw")).ToList();
        _slapd = await SlapdRig.StartAsync(users,
            [("crowd", users.Select(u => SlapdRig.UserDn(u.Item1)).ToArray()), ("outer", [SlapdRig.GroupDn("crowd")])]);
        _fixture = await ApiFixture.StartAsync(services =>
            {
                services.Configure<ApiOptions>(o => o.HostRef = _hostRef);
                services.AddLdapDirectory();
            },
            provider => provider.GetRequiredService<MasterState>().Set(_hostRef));
        var tx = new PoolTransaction();
        tx.Create(XenClasses.HostSchema, new Dictionary<string, object?> { ["name_label"] = "h1", ["enabled"] = true }, _hostRef);
        _pool = tx.Create(XenClasses.PoolSchema, new Dictionary<string, object?> { ["name_label"] = "pool", ["master"] = _hostRef }).Ref;
        await _fixture.Database.CommitAsync(tx, default);
        _root = await _fixture.LoginAsync();
    }

    public async Task DisposeAsync()
    {
        await _fixture.DisposeAsync();
        await _slapd.DisposeAsync();
    }

    private Task<object?> Root(string method, params object?[] args) => _fixture.Call(method, [_root, .. args]);

    [Fact]
    public async Task Many_directory_logins_and_subject_lookups_at_once_all_succeed()
    {
        var outer = await EnableAsync();

        for (var round = 0; round < 3; round++)
        {
            // Every user logs in (found through the nested group), while each user's subject is looked up as subject-add does.
            var logins = Enumerable.Range(0, Users).Select(i => _fixture.Call("session.login_with_password", User(i), User(i) + "-pw"));
            var lookups = Enumerable.Range(0, Users).Select(async i =>
            {
                var identifier = (string)(await Root("auth.get_subject_identifier", User(i)))!;
                Assert.Equal(SlapdRig.UserDn(User(i)), identifier);
                var information = (Dictionary<string, object?>)(await Root("auth.get_subject_information_from_identifier", identifier))!;
                Assert.Equal(User(i), information["subject-name"]);
                Assert.Contains(outer, ((List<object?>)(await Root("auth.get_group_membership", identifier))!).Cast<string>());
                return identifier;
            });
            var wrong = Enumerable.Range(0, 4).Select(i => Assert.ThrowsAsync<XenApiException>(() => _fixture.Call("session.login_with_password", User(i), "wrong")));

            var sessions = Task.WhenAll(logins);
            var found = Task.WhenAll(lookups);
            var refused = Task.WhenAll(wrong);
            await Task.WhenAll(sessions, found, refused);

            Assert.Equal(Users, (await sessions).Select(s => (string)s!).Distinct().Count());
            Assert.All(await refused, e => Assert.Equal([ErrorCodes.SessionAuthenticationFailed, e.ErrorDescription[1], "Authentication failure"], e.ErrorDescription));
            foreach (var session in await sessions)
            {
                await _fixture.Call("session.logout", session);
            }
        }
    }

    [Fact]
    public async Task Lookups_ride_out_a_directory_that_is_briefly_down()
    {
        await EnableAsync();

        // The directory goes away for a moment (as a restarted or overloaded slapd does) while lookups are under way:
        // a connection refused is tried again, a little later, and every lookup still gets its answer.
        var restart = _slapd.RestartAsync(TimeSpan.FromMilliseconds(300));
        var lookups = Enumerable.Range(0, Users).Select(async i =>
        {
            await Task.Delay(TimeSpan.FromMilliseconds(20 * i));
            return (string)(await Root("auth.get_subject_identifier", User(i)))!;
        });
        var found = await Task.WhenAll(lookups);
        await restart;

        Assert.Equal(Enumerable.Range(0, Users).Select(i => SlapdRig.UserDn(User(i))), found);
        var refused = await Assert.ThrowsAsync<XenApiException>(() => _fixture.Call("session.login_with_password", User(0), "wrong"));
        Assert.Equal(ErrorCodes.SessionAuthenticationFailed, refused.ErrorDescription[0]);
    }

    private async Task<string> EnableAsync()
    {
        var config = new Dictionary<string, object?> { ["base-dn"] = SlapdRig.BaseDn, ["user"] = "cn=admin," + SlapdRig.BaseDn, ["pass"] = "admin-pw" };
        await Root("pool.enable_external_auth", _pool, config, _slapd.Uri, LdapDirectory.TypeName);
        var outer = (string)(await Root("auth.get_subject_identifier", "outer"))!;
        var subject = (string)(await Root("subject.create", new Dictionary<string, object?> { ["subject_identifier"] = outer, ["other_config"] = new Dictionary<string, object?>() }))!;
        await Root("subject.add_to_roles", subject, RoleTable.FindByNameLabel("read-only")!.Ref);
        return outer;
    }
}
