using Corral.Api;
using Corral.Api.Dispatch;
using Corral.Api.Events;
using Corral.Api.Sessions;
using Corral.Model;
using Corral.PoolDatabase;
using Corral.PoolDatabase.Etcd;
using Corral.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>The XenAPI dispatcher over a real etcd pool database: sessions, errors, generic messages, event.from.</summary>
public sealed class ApiTests : IAsyncLifetime
{
    private ApiFixture _fixture = null!;

    public async Task InitializeAsync() => _fixture = await ApiFixture.StartAsync();

    public async Task DisposeAsync() => await _fixture.DisposeAsync();

    private Task<object?> Call(string method, params object?[] args) => _fixture.Call(method, args);

    private Task<string> LoginAsync() => _fixture.LoginAsync();

    private async Task<XenApiException> Fails(string method, params object?[] args) =>
        await Assert.ThrowsAsync<XenApiException>(() => Call(method, args));

    [Fact]
    public async Task Wrong_password_and_missing_session_are_refused_with_xenapi_codes()
    {
        Assert.Equal(ErrorCodes.SessionAuthenticationFailed, (await Fails("session.login_with_password", "root", "nope", "1.0", "t")).Code);
        Assert.Equal(ErrorCodes.SessionInvalid, (await Fails("VM.get_all", "OpaqueRef:not-a-session")).Code);
        var session = await LoginAsync();
        await Call("session.logout", session);
        Assert.Equal(ErrorCodes.SessionInvalid, (await Fails("VM.get_all", session)).Code);
    }

    [Fact]
    public async Task Bad_calls_get_the_right_errors()
    {
        var s = await LoginAsync();
        var unknown = await Fails("VM.fly", s);
        Assert.Equal([ErrorCodes.MessageMethodUnknown, "VM.fly"], unknown.ErrorDescription);
        var count = await Fails("VM.get_record", s);
        // As xapi counts: the parameters the message requires and those received, the session not counted.
        Assert.Equal([ErrorCodes.MessageParameterCountMismatch, "VM.get_record", "1", "0"], count.ErrorDescription);
        var handle = await Fails("VM.get_record", s, "OpaqueRef:00000000-0000-0000-0000-000000000000");
        Assert.Equal(ErrorCodes.HandleInvalid, handle.Code);
        Assert.Equal(ErrorCodes.HandleInvalid, (await Fails("VM.get_record", s, "garbage")).Code);
        var uuid = await Fails("VM.get_by_uuid", s, "not-a-uuid");
        Assert.Equal([ErrorCodes.UuidInvalid, "VM", "not-a-uuid"], uuid.ErrorDescription);
        Assert.Equal(ErrorCodes.FieldTypeError, (await Fails("event.from", s, new List<object?> { "vm" }, "", "soon")).Code);

        // A trailing parameter added in a later XenServer release (VM.migrate_send's vgpu_map) may be left off by
        // older clients; fewer than that is still a count mismatch.
        var vm = "OpaqueRef:00000000-0000-0000-0000-000000000001";
        var empty = new Dictionary<string, object?>();
        Assert.Equal([ErrorCodes.InvalidValue, "dest"], (await Fails("VM.assert_can_migrate", s, vm, empty, true, empty, empty, empty)).ErrorDescription.Take(2));
        Assert.Equal([ErrorCodes.InvalidValue, "dest"], (await Fails("VM.assert_can_migrate", s, vm, empty, true, empty, empty, empty, empty)).ErrorDescription.Take(2));
        Assert.Equal([ErrorCodes.MessageParameterCountMismatch, "VM.assert_can_migrate", "6", "5"],
            (await Fails("VM.assert_can_migrate", s, vm, empty, true, empty, empty)).ErrorDescription);
    }

    [Fact]
    public async Task Generic_getters_setters_and_maps_work_on_every_class()
    {
        var s = await LoginAsync();
        var vm = (string)(await Call("VM.create", s, new Dictionary<string, object?> { ["name_label"] = "web", ["memory_static_max"] = "268435456", ["memory_dynamic_max"] = "268435456", ["memory_dynamic_min"] = "268435456", ["memory_static_min"] = "134217728" }))!;
        Assert.Equal("web", await Call("VM.get_name_label", s, vm));
        await Call("VM.set_name_label", s, vm, "db");
        await Call("VM.add_to_other_config", s, vm, "k", "v");
        Assert.Equal(ErrorCodes.MapDuplicateKey, (await Fails("VM.add_to_other_config", s, vm, "k", "w")).Code);
        var record = (Dictionary<string, object?>)(await Call("VM.get_record", s, vm))!;
        Assert.Equal("db", record["name_label"]);
        Assert.Equal("Halted", record["power_state"]);
        Assert.Equal("v", ((Dictionary<string, object?>)record["other_config"]!)["k"]);
        Assert.Equal(vm, await Call("VM.get_by_uuid", s, (string)record["uuid"]!));
        Assert.Equal([vm], ((List<object?>)(await Call("VM.get_by_name_label", s, "db"))!).Cast<string>());
        var all = (Dictionary<string, object?>)(await Call("VM.get_all_records", s))!;
        Assert.Contains(vm, all.Keys);
        // power_state is read-only: there is no setter.
        Assert.Equal(ErrorCodes.MessageMethodUnknown, (await Fails("VM.set_power_state", s, vm, "Running")).Code);
        // Lifecycle calls check the power state first.
        Assert.Equal([ErrorCodes.VmBadPowerState, vm, "running", "halted"], (await Fails("VM.clean_shutdown", s, vm)).ErrorDescription);
    }

    [Fact]
    public async Task Constructors_take_the_whole_typed_record_a_client_sends()
    {
        var s = await LoginAsync();
        // What the XenAPI SDKs send to VM.create: every field of a VM record, typed (ints, floats, nested maps, refs),
        // runtime fields included; xapi takes the constructor's fields and ignores the rest.
        var record = new Corral.PoolDatabase.PoolTransaction().Create(XenApi.VM.Schema).ToRecord();
        record["name_label"] = "typed";
        record["VCPUs_max"] = 2L;
        record["VCPUs_at_startup"] = 2L;
        record["platform"] = new Dictionary<string, object?> { ["acpi"] = "1", ["cores-per-socket"] = "2" };
        record["HVM_shadow_multiplier"] = 1.0;
        record["power_state"] = "Running";
        record["resident_on"] = "OpaqueRef:00000000-0000-0000-0000-00000000dead";
        var vm = (string)(await Call("VM.create", s, record))!;
        var created = (Dictionary<string, object?>)(await Call("VM.get_record", s, vm))!;
        Assert.Equal("typed", created["name_label"]);
        Assert.Equal(2L, created["VCPUs_max"]);
        Assert.Equal("2", ((Dictionary<string, object?>)created["platform"]!)["cores-per-socket"]);
        Assert.Equal("Halted", created["power_state"]);
        Assert.Equal(OpaqueRef.Null, created["resident_on"]);
        Assert.Equal([ErrorCodes.FieldTypeError, "VCPUs_max"],
            (await Fails("VM.create", s, new Dictionary<string, object?> { ["VCPUs_max"] = "two" })).ErrorDescription);

        // A secret is data only: its implicit constructor and destructor store and remove it.
        var secret = (string)(await Call("secret.create", s, new Dictionary<string, object?> { ["value"] = "s3cret", ["other_config"] = new Dictionary<string, object?>() }))!;
        Assert.Equal("s3cret", await Call("secret.get_value", s, secret));
        await Call("secret.destroy", s, secret);
        Assert.Equal(ErrorCodes.HandleInvalid, (await Fails("secret.get_value", s, secret)).Code);
    }

    [Fact]
    public async Task Every_class_of_the_datamodel_answers_and_unimplemented_messages_say_so()
    {
        var s = await LoginAsync();
        foreach (var schema in XenClasses.All.Where(c => c.Messages.Any(m => m.Name == "get_all_records")))
        {
            Assert.IsType<Dictionary<string, object?>>(await Call($"{schema.Name}.get_all_records", s));
            Assert.IsType<List<object?>>(await Call($"{schema.Name}.get_all", s));
        }

        Assert.Equal([ErrorCodes.NotImplemented, "VMSS.create"],
            (await Fails("VMSS.create", s, new Dictionary<string, object?>())).ErrorDescription);
        Assert.Equal(ErrorCodes.MessageRemoved, (await Fails("VMPP.get_all", s)).Code);
        // Trailing parameters with a default may be left off: the two-argument login most scripts use.
        Assert.StartsWith("OpaqueRef:", (string)(await Call("session.login_with_password", "root", "pw"))!, StringComparison.Ordinal);
        Assert.Equal(ErrorCodes.MessageParameterCountMismatch, (await Fails("session.login_with_password", "root")).Code);
    }

    [Fact]
    public async Task Event_from_returns_changes_after_the_token_and_waits_for_them()
    {
        var s = await LoginAsync();
        var first = (Dictionary<string, object?>)(await Call("event.from", s, new List<object?> { "vm" }, "", 0.0))!;
        var token = (string)first["token"]!;

        var waiting = Call("event.from", s, new List<object?> { "vm" }, token, 10.0);
        await Task.Delay(200);
        Assert.False(waiting.IsCompleted);
        var vm = (string)(await Call("VM.create", s, new Dictionary<string, object?> { ["name_label"] = "evented" }))!;

        var result = (Dictionary<string, object?>)(await waiting)!;
        var events = ((List<object?>)result["events"]!).Cast<Dictionary<string, object?>>().ToList();
        Assert.True(events.Count > 0, $"no events; token {token} -> {result["token"]}, hub at {_fixture.Services.GetRequiredService<EventHub>().Revision}");
        var added = Assert.Single(events, e => (string)e["ref"]! == vm);
        Assert.Equal("vm", added["class"]);
        Assert.Equal("add", added["operation"]);
        Assert.Equal("evented", ((Dictionary<string, object?>)added["snapshot"]!)["name_label"]);
        Assert.True(string.CompareOrdinal((string)result["token"]!, token) > 0);

        var quiet = (Dictionary<string, object?>)(await Call("event.from", s, new List<object?> { "SR" }, (string)result["token"]!, 0.3))!;
        Assert.Empty((List<object?>)quiet["events"]!);
        Assert.Equal(ErrorCodes.EventFromTokenParseFailure, (await Fails("event.from", s, new List<object?> { "vm" }, "xyz", 0.1)).Code);
    }

    [Fact]
    public async Task Async_calls_return_a_task_that_ends_with_the_result()
    {
        var s = await LoginAsync();
        var task = (string)(await Call("Async.VM.create", s, new Dictionary<string, object?> { ["name_label"] = "later" }))!;
        var hub = _fixture.Services.GetRequiredService<EventHub>();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var done = await hub.WaitForAsync(XenClasses.Task, task, t => t.GetString("status") != "pending", cts.Token);
        Assert.Equal("success", done.GetString("status"));
        var vmRef = Corral.Api.Tasks.TaskService.DecodeResult(done.GetString("result"));
        Assert.Equal("later", await Call("VM.get_name_label", s, vmRef));
        Assert.Equal(XenClasses.VM, await _fixture.Services.GetRequiredService<IPoolDatabase>().FindClassOfAsync(vmRef, default));
    }
}
