using Corral.Api;
using Corral.Api.Dispatch;
using Corral.Api.Messages;
using Corral.Api.Sessions;
using Corral.Model;
using Corral.PoolDatabase;
using Corral.PoolDatabase.Etcd;
using Corral.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>
/// Roles, subjects, the directory questions, the session messages and pool messages over a real etcd, with xapi's
/// answers and errors.
/// </summary>
public sealed class AccessAndMessageTests : IAsyncLifetime
{
    private const int MessageLimit = 5;
    private ApiFixture _fixture = null!;
    private IPoolDatabase _db = null!;
    private string _s = "";

    public async Task InitializeAsync()
    {
        _fixture = await ApiFixture.StartAsync(services => services.Configure<MessageOptions>(o => o.Limit = MessageLimit));
        _db = _fixture.Database;
        _s = (string)(await Call("session.login_with_password", "root", "pw"))!;
    }

    public async Task DisposeAsync() => await _fixture.DisposeAsync();

    private Task<object?> Call(string method, params object?[] args) => _fixture.Call(method, args);

    private Task<object?> S(string method, params object?[] args) => Call(method, [_s, .. args]);

    private async Task<IReadOnlyList<string>> Fails(string method, params object?[] args) =>
        (await Assert.ThrowsAsync<XenApiException>(() => S(method, args))).ErrorDescription;

    private static List<string> Strings(object? set) => ((List<object?>)set!).Cast<string>().ToList();

    private static string RoleRef(string name) => RoleTable.FindByNameLabel(name)!.Ref;

    [Fact]
    public async Task Roles_are_answered_from_xapis_static_table()
    {
        var all = Strings(await S("role.get_all"));
        Assert.Equal(RoleTable.All.Count, all.Count);
        var records = (Dictionary<string, object?>)(await S("role.get_all_records"))!;
        Assert.Equal(all.Order(StringComparer.Ordinal), records.Keys.Order(StringComparer.Ordinal));

        var readOnly = RoleRef("read-only");
        var record = (Dictionary<string, object?>)(await S("role.get_record", readOnly))!;
        Assert.Equal("read-only", record["name_label"]);
        Assert.Equal("7233b8e3-eacb-d7da-2c95-f2e581cdbf4e", record["uuid"]);
        Assert.Equal(false, record["is_internal"]);
        Assert.Equal(readOnly, await S("role.get_by_uuid", "7233b8e3-eacb-d7da-2c95-f2e581cdbf4e"));
        Assert.Equal([readOnly], Strings(await S("role.get_by_name_label", "read-only")));
        Assert.Empty(Strings(await S("role.get_by_name_label", "superuser")));
        Assert.Equal("read-only", await S("role.get_name_label", readOnly));
        Assert.Equal(true, await S("role.get_is_internal", RoleRef("vm.start")));
        Assert.Equal(RoleTable.PermissionDescription, await S("role.get_name_description", RoleRef("vm.start")));
        Assert.Equal(Strings(record["subroles"]), Strings(await S("role.get_subroles", readOnly)));

        var names = Strings(await S("role.get_permissions_name_label", readOnly));
        Assert.Contains("vm.get_record", names);
        Assert.DoesNotContain("vm.start", names);
        Assert.Equal(names.Count, Strings(await S("role.get_permissions", readOnly)).Count);
        Assert.Equal([RoleRef("vm.start")], Strings(await S("role.get_permissions", RoleRef("vm.start"))));

        string[] mayStart = ["pool-admin", "pool-operator", "vm-power-admin", "vm-admin", "vm-operator"];
        Assert.Equal(mayStart.Select(RoleRef), Strings(await S("role.get_by_permission", RoleRef("vm.start"))));
        Assert.Equal(mayStart.Select(RoleRef), Strings(await S("role.get_by_permission_name_label", "vm.start")));
        Assert.Empty(Strings(await S("role.get_by_permission_name_label", "vm.fly")));

        Assert.Equal([ErrorCodes.HandleInvalid, "role", "OpaqueRef:nope"], await Fails("role.get_record", "OpaqueRef:nope"));
        Assert.Equal([ErrorCodes.HandleInvalid, "role", "OpaqueRef:nope"], await Fails("role.get_name_label", "OpaqueRef:nope"));
        Assert.Equal([ErrorCodes.UuidInvalid, "role", "no-such-uuid"], await Fails("role.get_by_uuid", "no-such-uuid"));
    }

    [Fact]
    public async Task Roles_send_no_events_as_they_are_in_no_database()
    {
        var batch = (Dictionary<string, object?>)(await S("event.from", new List<object?> { "*" }, "", 0.0))!;
        var events = ((List<object?>)batch["events"]!).Cast<Dictionary<string, object?>>();
        Assert.DoesNotContain(events, e => (string)e["class"]! == "role");
        var roles = (Dictionary<string, object?>)(await S("event.from", new List<object?> { "role" }, "", 0.0))!;
        Assert.Empty((List<object?>)roles["events"]!);
    }

    [Fact]
    public async Task A_subjects_life_create_roles_and_destroy()
    {
        const string sid = "S-1-5-21-1004336348-1177238915-682003330-1106";
        var info = new Dictionary<string, object?> { ["subject-name"] = @"CORP\alice", ["subject-is-group"] = "false" };
        var subject = (string)(await S("subject.create", new Dictionary<string, object?>
        {
            ["subject_identifier"] = sid, ["other_config"] = info, ["roles"] = new List<object?> { RoleRef("pool-admin") },
        }))!;
        var record = (Dictionary<string, object?>)(await S("subject.get_record", subject))!;
        Assert.Equal(sid, record["subject_identifier"]);
        Assert.Equal(@"CORP\alice", ((Dictionary<string, object?>)record["other_config"]!)["subject-name"]);
        // roles is not a constructor field: a new subject holds none, as in a pool licensed for RBAC.
        Assert.Empty(Strings(record["roles"]));
        Assert.Equal([ErrorCodes.SubjectAlreadyExists], await Fails("subject.create", new Dictionary<string, object?> { ["subject_identifier"] = sid }));
        Assert.Equal(ErrorCodes.InvalidValue, (await Fails("subject.create", new Dictionary<string, object?>()))[0]);

        await S("subject.add_to_roles", subject, RoleRef("vm-admin"));
        Assert.Equal([RoleRef("vm-admin")], Strings(await S("subject.get_roles", subject)));
        Assert.Equal([ErrorCodes.RoleAlreadyExists], await Fails("subject.add_to_roles", subject, RoleRef("vm-admin")));
        Assert.Equal([ErrorCodes.RoleNotFound], await Fails("subject.add_to_roles", subject, "OpaqueRef:not-a-role"));
        Assert.Equal([ErrorCodes.RoleNotFound], await Fails("subject.remove_from_roles", subject, RoleRef("read-only")));
        var permissions = Strings(await S("subject.get_permissions_name_label", subject));
        Assert.Contains("vm.destroy", permissions);
        Assert.DoesNotContain("pool.enable_ha", permissions);
        Assert.DoesNotContain("vm-admin", permissions);

        // The directory questions: the pool's own subjects are known; anything else needs a directory Corral lacks.
        Assert.Equal(@"CORP\alice", ((Dictionary<string, object?>)(await S("auth.get_subject_information_from_identifier", sid))!)["subject-name"]);
        Assert.Equal([ErrorCodes.AuthIsDisabled], await Fails("auth.get_subject_information_from_identifier", "S-1-5-21-9"));
        Assert.Equal([ErrorCodes.AuthIsDisabled], await Fails("auth.get_subject_identifier", @"CORP\alice"));
        Assert.Equal([ErrorCodes.AuthIsDisabled], await Fails("auth.get_group_membership", sid));

        await S("subject.remove_from_roles", subject, RoleRef("vm-admin"));
        Assert.Empty(Strings(await S("subject.get_roles", subject)));
        await S("subject.destroy", subject);
        Assert.Equal([ErrorCodes.HandleInvalid, "subject", subject], await Fails("subject.get_record", subject));
        Assert.Equal([ErrorCodes.HandleInvalid, "subject", subject], await Fails("subject.destroy", subject));
        // Its identifier is free again.
        Assert.StartsWith("OpaqueRef:", (string)(await S("subject.create", new Dictionary<string, object?> { ["subject_identifier"] = sid }))!, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_pool_not_licensed_for_rbac_cannot_change_roles_and_makes_pool_admins()
    {
        var tx = new PoolTransaction();
        tx.Create(XenApi.Pool.Schema, new Dictionary<string, object?> { ["restrictions"] = new Dictionary<string, object?> { ["restrict_rbac"] = "true" } });
        await _db.CommitAsync(tx, default);
        var subject = (string)(await S("subject.create", new Dictionary<string, object?> { ["subject_identifier"] = "S-1-5-21-7" }))!;
        Assert.Equal([RoleRef("pool-admin")], Strings(await S("subject.get_roles", subject)));
        Assert.Equal([ErrorCodes.LicenceRestriction, "RBAC"], await Fails("subject.add_to_roles", subject, RoleRef("read-only")));
        Assert.Equal([ErrorCodes.LicenceRestriction, "RBAC"], await Fails("subject.remove_from_roles", subject, RoleRef("pool-admin")));
    }

    [Fact]
    public async Task Sessions_of_a_subject_are_listed_and_logged_out_but_never_roots()
    {
        Assert.Empty(Strings(await S("session.get_all_subject_identifiers")));
        var group = (string)(await S("subject.create", new Dictionary<string, object?> { ["subject_identifier"] = "S-1-5-21-513" }))!;

        // A session as an external login makes it (Corral has no directory yet): a user let in by a group.
        var tx = new PoolTransaction();
        var external = tx.Create(XenApi.Session.Schema, new Dictionary<string, object?>
        {
            ["is_local_superuser"] = false, ["auth_user_sid"] = "S-1-5-21-1106", ["auth_user_name"] = @"CORP\bob", ["subject"] = group,
            ["last_active"] = DateTime.UtcNow, ["validation_time"] = DateTime.UtcNow,
        });
        await _db.CommitAsync(tx, default);
        Assert.Equal(["S-1-5-21-1106", "S-1-5-21-513"], Strings(await S("session.get_all_subject_identifiers")).Order(StringComparer.Ordinal));

        await S("session.logout_subject_identifier", "S-1-5-21-513");
        Assert.Null(await _db.TryGetAsync(XenClasses.Session, external.Ref, default));
        Assert.Empty(Strings(await S("session.get_all_subject_identifiers")));
        // The caller's own session, root's, is untouched.
        Assert.Equal(true, await S("session.get_is_local_superuser", _s));
    }

    [Fact]
    public async Task Local_logout_ends_a_host_local_session_and_leaves_a_pool_session_alone()
    {
        // What session.slave_local_login_with_password makes (registered by the agent with the pool membership messages).
        var local = _fixture.Services.GetRequiredService<SessionService>().LocalLogin("root", "pw", "");
        await Call("session.local_logout", local);
        Assert.Equal(ErrorCodes.SessionInvalid, (await Assert.ThrowsAsync<XenApiException>(() => Call("session.local_logout", local))).Code);

        await S("session.local_logout");
        Assert.Equal(true, await S("session.get_is_local_superuser", _s));
    }

    private async Task<string> VmUuidAsync()
    {
        var vm = (string)(await S("VM.create", new Dictionary<string, object?> { ["name_label"] = "alerted" }))!;
        return (string)(await S("VM.get_uuid", vm))!;
    }

    [Fact]
    public async Task A_messages_life_create_find_and_destroy()
    {
        var uuid = await VmUuidAsync();
        var before = DateTime.UtcNow.AddSeconds(-1);
        var events = (Dictionary<string, object?>)(await S("event.from", new List<object?> { "message" }, "", 0.0))!;
        var message = (string)(await S("message.create", "VM_CRASHED", 2L, "VM", uuid, "the VM crashed"))!;

        var record = (Dictionary<string, object?>)(await S("message.get_record", message))!;
        Assert.Equal("VM_CRASHED", record["name"]);
        Assert.Equal(2L, record["priority"]);
        Assert.Equal("VM", record["cls"]);
        Assert.Equal(uuid, record["obj_uuid"]);
        Assert.Equal("the VM crashed", record["body"]);
        Assert.InRange((DateTime)record["timestamp"]!, before, DateTime.UtcNow.AddSeconds(1));
        Assert.Equal(message, await S("message.get_by_uuid", record["uuid"]));
        Assert.Contains(message, Strings(await S("message.get_all")));
        Assert.Contains(message, ((Dictionary<string, object?>)(await S("message.get_all_records"))!).Keys);
        Assert.Contains(message, ((Dictionary<string, object?>)(await S("message.get", "VM", uuid, before))!).Keys);
        Assert.Contains(message, ((Dictionary<string, object?>)(await S("message.get_since", before))!).Keys);
        Assert.Empty((Dictionary<string, object?>)(await S("message.get_since", DateTime.UtcNow.AddMinutes(1)))!);
        Assert.Empty((Dictionary<string, object?>)(await S("message.get", "VM", await VmUuidAsync(), before))!);

        // Clients learn of it through event.from, as from xapi.
        var added = (Dictionary<string, object?>)(await S("event.from", new List<object?> { "message" }, events["token"], 5.0))!;
        Assert.Contains(((List<object?>)added["events"]!).Cast<Dictionary<string, object?>>(), e => (string)e["ref"]! == message && (string)e["operation"]! == "add");

        Assert.Equal([ErrorCodes.UuidInvalid, "VM", "no-such-vm"], await Fails("message.create", "X", 1L, "VM", "no-such-vm", ""));
        Assert.Equal([ErrorCodes.UuidInvalid, "Host", uuid], await Fails("message.create", "X", 1L, "Host", uuid, ""));
        Assert.Equal([ErrorCodes.UuidInvalid, "VMPP", uuid], await Fails("message.create", "X", 1L, "VMPP", uuid, ""));
        Assert.Equal([ErrorCodes.UuidInvalid], await Fails("message.get", "VM", "no-such-vm", before));
        Assert.Equal([ErrorCodes.UuidInvalid, "message", "nope"], await Fails("message.get_by_uuid", "nope"));

        await S("message.destroy", message);
        Assert.Equal([ErrorCodes.HandleInvalid, "message", message], await Fails("message.get_record", message));
        Assert.Equal([ErrorCodes.HandleInvalid, "message", message], await Fails("message.destroy", message));

        var first = (string)(await S("message.create", "A", 1L, "VM", uuid, ""))!;
        var second = (string)(await S("message.create", "B", 1L, "VM", uuid, ""))!;
        await S("message.destroy_many", new List<object?> { first, second });
        Assert.DoesNotContain(Strings(await S("message.get_all")), m => m == first || m == second);
    }

    [Fact]
    public async Task Messages_beyond_the_limit_are_collected_oldest_first()
    {
        var uuid = await VmUuidAsync();
        var tx = new PoolTransaction();
        var start = DateTime.UtcNow.AddHours(-1);
        var refs = Enumerable.Range(0, MessageLimit + 3)
            .Select(i => PoolMessages.Create(tx, $"M{i}", 3L, Cls.VM, uuid, "", start.AddMinutes(i)).Ref).ToList();
        await _db.CommitAsync(tx, default);

        var collector = _fixture.Services.GetRequiredService<MessageCollector>();
        Assert.Equal(3, await collector.CollectAsync(default));
        Assert.Equal(refs.Skip(3).Order(StringComparer.Ordinal), Strings(await S("message.get_all")).Order(StringComparer.Ordinal));
        Assert.Equal(0, await collector.CollectAsync(default));
    }

    [Fact]
    public void Message_options_are_checked_at_start()
    {
        var services = new ServiceCollection();
        services.AddXenApi();
        services.Configure<MessageOptions>(o => o.Limit = 0);
        using var provider = services.BuildServiceProvider();
        Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<MessageOptions>>().Value);
    }
}
