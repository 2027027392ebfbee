using Corral.Api;
using Corral.Api.AllowedOperations;
using Corral.Api.Dispatch;
using Corral.Api.Pool;
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

/// <summary>
/// The master's <see cref="AllowedOperationsService"/> over a real etcd, with Corral's own dispatcher deciding what is
/// implemented: a VM's allowed_operations follow its power state, its guest's agent and its current operations.
/// </summary>
public sealed class AllowedOperationsTests : IAsyncLifetime
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);
    private readonly string _hostRef = OpaqueRef.New();
    private ApiFixture _fixture = null!;
    private IPoolDatabase _db = null!;
    private string _session = "";

    public async Task InitializeAsync()
    {
        // This host won the election: the service works here.
        _fixture = await ApiFixture.StartAsync(services => services.Configure<ApiOptions>(o => o.HostRef = _hostRef),
            provider => provider.GetRequiredService<MasterState>().Set(_hostRef));
        _db = _fixture.Database;
        _session = await _fixture.LoginAsync();
    }

    public async Task DisposeAsync() => await _fixture.DisposeAsync();

    private Task<object?> Call(string method, params object?[] args) => _fixture.Call(method, args);

    private async Task<string> CreateVmAsync() =>
        (string)(await Call("VM.create", _session, new Dictionary<string, object?> { ["name_label"] = "web" }))!;

    /// <summary>Waits until the object's allowed_operations are exactly <paramref name="expected"/>; returns it then.</summary>
    private async Task<XenObject> AllowedBecomesAsync(string className, string reference, params string[] expected)
    {
        var deadline = DateTime.UtcNow + Patience;
        XenObject current;
        do
        {
            current = await _db.GetAsync(className, reference, default);
            if (current.GetSet("allowed_operations").Order(StringComparer.Ordinal).SequenceEqual(expected.Order(StringComparer.Ordinal)))
            {
                return current;
            }

            await Task.Delay(100);
        }
        while (DateTime.UtcNow < deadline);

        Assert.Equal(expected.Order(StringComparer.Ordinal), current.GetSet("allowed_operations").Order(StringComparer.Ordinal));
        return current;
    }

    private Task ChangeAsync(string className, string reference, Action<XenObject> change) =>
        _db.UpdateAsync([(className, reference)], (objs, tx) =>
        {
            var o = objs[0].Clone();
            change(o);
            tx.Update(o);
        }, default);

    // What Corral implements today: no suspend or memory checkpoints (export is the HTTP handler /export).
    private static readonly string[] Halted = ["start", "start_on", "clone", "copy", "changing_dynamic_range", "changing_static_range", "make_into_template", "destroy", "snapshot", "create_vtpm", "export"];
    private static readonly string[] RunningWithoutAgent = ["pause", "clean_shutdown", "hard_shutdown", "hard_reboot", "pool_migrate", "migrate_send", "snapshot", "changing_dynamic_range"];

    // A guest with drivers takes vCPUs live (xapi: VM_LACKS_FEATURE without); one whose agent reports, a clean reboot.
    private static readonly string[] RunningWithDrivers = [.. RunningWithoutAgent, "changing_VCPUs_live"];
    private static readonly string[] RunningWithAgent = [.. RunningWithDrivers, "clean_reboot"];

    [Fact]
    public async Task A_vtpm_may_be_destroyed_while_its_vm_is_halted_and_a_vm_with_one_may_not_get_another()
    {
        var vm = await CreateVmAsync();
        var vtpm = (string)(await Call("VTPM.create", _session, vm, false))!;
        await AllowedBecomesAsync(XenApi.VTPM.ClassName, vtpm, "destroy");
        await AllowedBecomesAsync(XenClasses.VM, vm, [.. Halted.Where(op => op != "create_vtpm")]);
        await ChangeAsync(XenClasses.VM, vm, v => v.Set(XenApi.VM.PowerState, VmPowerState.Running));
        await AllowedBecomesAsync(XenApi.VTPM.ClassName, vtpm);
    }

    [Fact]
    public async Task A_vms_allowed_operations_follow_its_power_state_its_agent_and_its_current_operations()
    {
        var vm = await CreateVmAsync();
        await AllowedBecomesAsync(XenClasses.VM, vm, Halted);

        // The VM runs (as its host's agent records it): what a running guest without tools allows.
        await ChangeAsync(XenClasses.VM, vm, v =>
        {
            v["power_state"] = "Running";
            v["resident_on"] = _hostRef;
        });
        await AllowedBecomesAsync(XenClasses.VM, vm, RunningWithoutAgent);

        // Its guest agent reports: a change of VM_guest_metrics alone brings the clean reboot.
        var tx = new PoolTransaction();
        var guest = tx.Create(XenClasses.VMGuestMetricsSchema, new Dictionary<string, object?> { ["live"] = false });
        await _db.CommitAsync(tx, default);
        await ChangeAsync(XenClasses.VM, vm, v => v["guest_metrics"] = guest.Ref);
        await ChangeAsync(XenClasses.VMGuestMetrics, guest.Ref, g =>
        {
            g["live"] = true;
            g["PV_drivers_version"] = new Dictionary<string, object?> { ["major"] = "1", ["minor"] = "0" };
        });
        await AllowedBecomesAsync(XenClasses.VM, vm, RunningWithAgent);

        // A clean shutdown in progress: only the forced operations may start beside it.
        var task = (string)(await Call("task.create", _session, "VM.clean_shutdown", ""))!;
        await ChangeAsync(XenClasses.VM, vm, v => v["current_operations"] = new Dictionary<string, object?> { [task] = "clean_shutdown" });
        await AllowedBecomesAsync(XenClasses.VM, vm, "hard_shutdown", "hard_reboot");

        // Its task ends without the entry removed (the process that ran it died): the master removes it.
        await ChangeAsync(XenClasses.Task, task, t => t["status"] = "success");
        var settled = await AllowedBecomesAsync(XenClasses.VM, vm, RunningWithAgent);
        Assert.Empty(settled.GetStringMap("current_operations"));

        // The service's own writes start no further round: neither the record nor its list is written again.
        var list = await _db.Leases.GetWithRevisionAsync(PoolKeys.AllowedKey(XenClasses.VM, vm), default);
        await Task.Delay(TimeSpan.FromSeconds(2));
        Assert.Equal(settled.ModRevision, (await _db.GetAsync(XenClasses.VM, vm, default)).ModRevision);
        Assert.Equal(list, await _db.Leases.GetWithRevisionAsync(PoolKeys.AllowedKey(XenClasses.VM, vm), default));
    }

    /// <summary>A running VM whose guest has drivers: its clean reboot follows its guest metrics' <c>live</c> alone.</summary>
    private async Task<(string Vm, string Guest)> RunningVmWithGuestAsync()
    {
        var vm = await CreateVmAsync();
        var tx = new PoolTransaction();
        var guest = tx.Create(XenClasses.VMGuestMetricsSchema, new Dictionary<string, object?>
        {
            ["live"] = false,
            ["PV_drivers_version"] = new Dictionary<string, object?> { ["major"] = "1", ["minor"] = "0" },
        });
        await _db.CommitAsync(tx, default);
        await ChangeAsync(XenClasses.VM, vm, v =>
        {
            v["power_state"] = "Running";
            v["resident_on"] = _hostRef;
            v["guest_metrics"] = guest.Ref;
        });
        await AllowedBecomesAsync(XenClasses.VM, vm, RunningWithDrivers);
        return (vm, guest.Ref);
    }

    [Fact]
    public async Task A_guarded_writer_of_a_vm_is_not_disturbed_by_the_master_recomputing_its_list_meanwhile()
    {
        var (vm, guest) = await RunningVmWithGuestAsync();
        for (var i = 0; i < 10; i++)
        {
            // Read the VM, then let the master rewrite its list (its guest's agent comes and goes) before committing,
            // as a VM start records its devices while the master follows the start: the commit must not fail.
            var read = await _db.GetAsync(XenClasses.VM, vm, default);
            var agent = i % 2 == 0;
            await ChangeAsync(XenClasses.VMGuestMetrics, guest, g => g["live"] = agent);
            await AllowedBecomesAsync(XenClasses.VM, vm, agent ? RunningWithAgent : RunningWithDrivers);
            var changed = read.Clone();
            changed["other_config"] = new Dictionary<string, object?> { ["step"] = i.ToString(System.Globalization.CultureInfo.InvariantCulture) };
            var tx = new PoolTransaction();
            tx.Update(changed);
            await _db.CommitAsync(tx, default);
        }

        // And all at once: the guest flapping while the VM is written, read-change-commit without a retry.
        using var stop = new CancellationTokenSource();
        var flapping = Task.Run(async () =>
        {
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                await ChangeAsync(XenClasses.VMGuestMetrics, guest, g => g["live"] = i % 2 == 0);
                await Task.Delay(20);
            }
        });
        for (var i = 0; i < 50; i++)
        {
            var changed = (await _db.GetAsync(XenClasses.VM, vm, default)).Clone();
            await Task.Delay(10);
            changed["name_description"] = $"step {i}";
            var tx = new PoolTransaction();
            tx.Update(changed);
            await _db.CommitAsync(tx, default);
        }

        await stop.CancelAsync();
        await flapping;
        await ChangeAsync(XenClasses.VMGuestMetrics, guest, g => g["live"] = true);
        await AllowedBecomesAsync(XenClasses.VM, vm, RunningWithAgent);
    }

    [Fact]
    public async Task Get_record_and_event_from_show_the_list()
    {
        var (vm, guest) = await RunningVmWithGuestAsync();
        var record = (Dictionary<string, object?>)(await Call("VM.get_record", _session, vm))!;
        Assert.Equal(RunningWithDrivers.Order(StringComparer.Ordinal), ((List<object?>)record["allowed_operations"]!).Cast<string>().Order(StringComparer.Ordinal));
        var all = (Dictionary<string, object?>)(await Call("event.from", _session, new List<object?> { "vm" }, "", 0.0))!;
        var added = ((List<object?>)all["events"]!).Cast<Dictionary<string, object?>>().Single(e => (string)e["ref"]! == vm);
        Assert.Equal(RunningWithDrivers.Order(StringComparer.Ordinal),
            ((List<object?>)((Dictionary<string, object?>)added["snapshot"]!)["allowed_operations"]!).Cast<string>().Order(StringComparer.Ordinal));

        // Only the list changes (the guest's agent reports): a "mod" of the VM with the new list.
        var token = (string)all["token"]!;
        var revision = (await _db.GetAsync(XenClasses.VM, vm, default)).ModRevision;
        await ChangeAsync(XenClasses.VMGuestMetrics, guest, g => g["live"] = true);
        var deadline = DateTime.UtcNow + Patience;
        List<string>? seen = null;
        while (seen?.Contains("clean_reboot") != true && DateTime.UtcNow < deadline)
        {
            var from = (Dictionary<string, object?>)(await Call("event.from", _session, new List<object?> { "vm" }, token, 5.0))!;
            token = (string)from["token"]!;
            foreach (var e in ((List<object?>)from["events"]!).Cast<Dictionary<string, object?>>().Where(e => (string)e["ref"]! == vm))
            {
                Assert.Equal("mod", e["operation"]);
                seen = ((List<object?>)((Dictionary<string, object?>)e["snapshot"]!)["allowed_operations"]!).Cast<string>().ToList();
            }
        }

        Assert.Equal(RunningWithAgent.Order(StringComparer.Ordinal), seen!.Order(StringComparer.Ordinal));
        Assert.Equal(revision, (await _db.GetAsync(XenClasses.VM, vm, default)).ModRevision);
    }

    [Fact]
    public async Task Destroying_objects_leaves_no_list_behind()
    {
        var vm = await CreateVmAsync();
        var cd = (string)(await Call("VBD.create", _session, new Dictionary<string, object?>
        {
            ["VM"] = vm, ["type"] = "CD", ["empty"] = true, ["mode"] = "RO", ["userdevice"] = "3",
        }))!;
        await AllowedBecomesAsync(XenClasses.VBD, cd, "attach", "insert");
        await AllowedBecomesAsync(XenClasses.VM, vm, Halted);
        Assert.NotNull(await _db.Leases.GetValueAsync(PoolKeys.AllowedKey(XenClasses.VM, vm), default));

        await Call("VBD.destroy", _session, cd);
        await Call("VM.destroy", _session, vm);
        Assert.Null(await _db.Leases.GetValueAsync(PoolKeys.AllowedKey(XenClasses.VBD, cd), default));
        Assert.Null(await _db.Leases.GetValueAsync(PoolKeys.AllowedKey(XenClasses.VM, vm), default));
        // Nor does the master write one afterwards for an object it still had to compute.
        await Task.Delay(TimeSpan.FromSeconds(1));
        var left = await _db.Leases.GetPrefixAsync(PoolKeys.Allowed, default);
        Assert.DoesNotContain(left.Keys, k => k.EndsWith(vm, StringComparison.Ordinal) || k.EndsWith(cd, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Devices_and_hosts_get_their_lists_too()
    {
        var vm = await CreateVmAsync();
        var cd = (string)(await Call("VBD.create", _session, new Dictionary<string, object?>
        {
            ["VM"] = vm, ["type"] = "CD", ["empty"] = true, ["mode"] = "RO", ["userdevice"] = "3",
        }))!;
        await AllowedBecomesAsync(XenClasses.VBD, cd, "attach", "insert");
        // Corral does not hot-plug, so a running VM's CD drive offers the same.
        await ChangeAsync(XenClasses.VM, vm, v => v["power_state"] = "Running");
        await AllowedBecomesAsync(XenClasses.VM, vm, RunningWithoutAgent);
        await AllowedBecomesAsync(XenClasses.VBD, cd, "attach", "insert");

        var tx = new PoolTransaction();
        var host = tx.Create(XenClasses.HostSchema, new Dictionary<string, object?> { ["name_label"] = "h", ["enabled"] = true });
        await _db.CommitAsync(tx, default);
        await AllowedBecomesAsync(XenClasses.Host, host.Ref, "provision", "evacuate", "vm_start", "vm_migrate", "enable");
    }

    [Fact]
    public async Task Operations_are_recorded_under_their_task_and_refused_with_xapis_errors()
    {
        var vm = await CreateVmAsync();
        var marks = _fixture.Services.GetRequiredService<OperationMarks>();
        var context = new CallContext(_session, "127.0.0.1", "VM.clone");
        await using (var mark = await marks.MarkVmAsync(context, vm, VmOperations.Clone, default))
        {
            var marked = await _db.GetAsync(XenClasses.VM, vm, default);
            Assert.Equal("clone", marked.GetStringMap("current_operations")[mark.TaskRef]);
            Assert.Equal("pending", (await _db.GetAsync(XenClasses.Task, mark.TaskRef, default)).GetString("status"));
            var refused = await Assert.ThrowsAsync<XenApiException>(() => Call("VM.destroy", _session, vm));
            Assert.Equal([ErrorCodes.OtherOperationInProgress, "VM", vm, "clone", mark.TaskRef], refused.ErrorDescription);
            // A copy (or an export) may run beside a clone, as in xapi.
            await marks.AssertVmAsync(marked, VmOperations.Copy, default);
            await AllowedBecomesAsync(XenClasses.VM, vm, "clone", "copy", "export");
        }

        Assert.Empty((await _db.GetAsync(XenClasses.VM, vm, default)).GetStringMap("current_operations"));
        await AllowedBecomesAsync(XenClasses.VM, vm, Halted);

        var pause = await Assert.ThrowsAsync<XenApiException>(() => Call("VM.assert_operation_valid", _session, vm, "pause"));
        Assert.Equal([ErrorCodes.VmBadPowerState, vm, "running", "halted"], pause.ErrorDescription);
        await Call("VM.assert_operation_valid", _session, vm, "start");
        await Call("VM.set_is_a_template", _session, vm, true);
        var start = await Assert.ThrowsAsync<XenApiException>(() => Call("VM.start", _session, vm, false, false));
        Assert.Equal(["VM_IS_TEMPLATE", vm, "start"], start.ErrorDescription);
        // Computed by the call itself, whatever the service has done yet.
        await Call("VM.update_allowed_operations", _session, vm);
        string[] template = ["changing_dynamic_range", "changing_static_range", "clone", "copy", "destroy", "export", "provision"];
        Assert.Equal(template, (await _db.GetAsync(XenClasses.VM, vm, default)).GetSet("allowed_operations").Order(StringComparer.Ordinal));
    }
}
