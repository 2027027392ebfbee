using Corral.Api.Methods;
using Corral.Model;
using Corral.PoolDatabase;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>
/// The VTPM messages over a real etcd, as xapi answers them: one VTPM per halted VM, its record's fields, its contents
/// kept in a secret that only root reads and writes (base64 only), destroy only while the VM is halted or suspended,
/// and VTPMs copied by VM.clone (a unique one's contents not) and removed by VM.destroy.
/// </summary>
public sealed class VtpmApiTests : IAsyncLifetime
{
    private ApiFixture _fixture = null!;
    private string _root = "";

    public async Task InitializeAsync()
    {
        _fixture = await ApiFixture.StartAsync();
        _root = await _fixture.LoginAsync();
    }

    public async Task DisposeAsync() => await _fixture.DisposeAsync();

    private Task<object?> S(string method, params object?[] args) => _fixture.Call(method, [_root, .. args]);

    private async Task<XenApiException> Fails(string method, params object?[] args) => await Assert.ThrowsAsync<XenApiException>(() => S(method, args));

    private async Task<string> VmAsync(string power = "Halted")
    {
        var tx = new PoolTransaction();
        var vm = tx.Create(XenClasses.VMSchema, new Dictionary<string, object?> { ["name_label"] = "tpm-vm", ["power_state"] = power });
        await _fixture.Database.CommitAsync(tx, default);
        return vm.Ref;
    }

    [Fact]
    public async Task A_halted_vm_gets_one_vtpm_whose_contents_only_root_reads_and_writes()
    {
        var vm = await VmAsync();
        var vtpm = (string)(await S("VTPM.create", vm, true))!;
        var record = (Dictionary<string, object?>)(await S("VTPM.get_record", vtpm))!;
        Assert.Equal(vm, record["VM"]);
        Assert.Equal(OpaqueRef.Null, record["backend"]);
        Assert.Equal("xapi", record["persistence_backend"]);
        Assert.Equal(true, record["is_unique"]);
        Assert.Equal(false, record["is_protected"]);
        Assert.False(record.ContainsKey("contents"), "the contents are not part of the record");
        Assert.Equal([vtpm], ((List<object?>)(await S("VM.get_VTPMs", vm))!).Cast<string>());

        // One per VM, as xapi: the second is refused with the number it has.
        Assert.Equal([ErrorCodes.VtpmMaxAmountReached, "1"], (await Fails("VTPM.create", vm, false)).ErrorDescription);

        Assert.Equal("", await S("VTPM.get_contents", vtpm));
        var contents = Convert.ToBase64String("tpm state"u8.ToArray());
        await S("VTPM.set_contents", vtpm, contents);
        Assert.Equal(contents, await S("VTPM.get_contents", vtpm));
        Assert.Equal(ErrorCodes.InternalError, (await Fails("VTPM.set_contents", vtpm, "not base64!")).Code);
        Assert.Equal(contents, await VtpmRecords.ContentsAsync(_fixture.Database, vtpm, default));

        // A pool-admin who is not root may create and destroy VTPMs, but not read or write their contents (xapi's
        // _R_LOCAL_ROOT_ONLY).
        var admin = await SessionOfAsync("pool-admin");
        var denied = await Assert.ThrowsAsync<XenApiException>(() => _fixture.Call("VTPM.get_contents", admin, vtpm));
        Assert.Equal([ErrorCodes.RbacPermissionDenied, "VTPM.get_contents"], denied.ErrorDescription.Take(2));
        Assert.Equal(ErrorCodes.RbacPermissionDenied, (await Assert.ThrowsAsync<XenApiException>(() => _fixture.Call("VTPM.set_contents", admin, vtpm, contents))).Code);
        var other = await VmAsync();
        Assert.NotNull(await _fixture.Call("VTPM.create", admin, other, false));
        // A vm-operator may not create one at all.
        var operatorSession = await SessionOfAsync("vm-operator");
        var third = await VmAsync();
        Assert.Equal(ErrorCodes.RbacPermissionDenied, (await Assert.ThrowsAsync<XenApiException>(() => _fixture.Call("VTPM.create", operatorSession, third, false))).Code);
    }

    [Fact]
    public async Task Only_a_halted_vm_gets_a_vtpm_and_only_a_halted_or_suspended_one_loses_it()
    {
        var running = await VmAsync("Running");
        Assert.Equal(ErrorCodes.VmBadPowerState, (await Fails("VTPM.create", running, false)).Code);

        var vm = await VmAsync();
        var vtpm = (string)(await S("VTPM.create", vm, false))!;
        var secret = (await VtpmRecords.SecretAsync(_fixture.Database, vtpm, default))!.Ref;
        await SetPowerAsync(vm, "Running");
        var refused = await Fails("VTPM.destroy", vtpm);
        Assert.Equal([ErrorCodes.VmBadPowerState, vm, "halted, suspended", "running"], refused.ErrorDescription);
        await SetPowerAsync(vm, "Suspended");
        await S("VTPM.destroy", vtpm);
        Assert.Empty((List<object?>)(await S("VM.get_VTPMs", vm))!);
        Assert.Null(await _fixture.Database.TryGetAsync(XenApi.Secret.ClassName, secret, default));
        Assert.Null(await _fixture.Database.Leases.GetValueAsync(PoolKeys.VtpmContentsKey(vtpm), default));
        Assert.Equal(ErrorCodes.HandleInvalid, (await Fails("VTPM.destroy", vtpm)).Code);
    }

    [Fact]
    public async Task A_clone_copies_the_vtpm_unless_unique_and_destroying_the_vm_removes_it()
    {
        var vm = await VmAsync();
        var vtpm = (string)(await S("VTPM.create", vm, false))!;
        var contents = Convert.ToBase64String(new byte[] { 1, 2, 3, 4, 5, 6 });
        await S("VTPM.set_contents", vtpm, contents);

        var clone = (string)(await S("VM.clone", vm, "clone"))!;
        var copied = ((List<object?>)(await S("VM.get_VTPMs", clone))!).Cast<string>().Single();
        Assert.NotEqual(vtpm, copied);
        Assert.Equal(contents, await S("VTPM.get_contents", copied));
        Assert.Equal(clone, await S("VTPM.get_VM", copied));

        // The helper a snapshot uses: a new record with the same contents, the source's untouched.
        var target = await VmAsync();
        var made = await VtpmRecords.CopyAsync(_fixture.Database, vm, target, default);
        Assert.Equal(contents, await S("VTPM.get_contents", Assert.Single(made)));
        Assert.Equal([vtpm], ((List<object?>)(await S("VM.get_VTPMs", vm))!).Cast<string>());

        // A unique VTPM's contents are never copied: its copy is a new TPM.
        var unique = await VmAsync();
        var uniqueVtpm = (string)(await S("VTPM.create", unique, true))!;
        await S("VTPM.set_contents", uniqueVtpm, contents);
        var uniqueClone = (string)(await S("VM.clone", unique, "unique clone"))!;
        var fresh = ((List<object?>)(await S("VM.get_VTPMs", uniqueClone))!).Cast<string>().Single();
        Assert.Equal("", await S("VTPM.get_contents", fresh));
        Assert.Equal(true, await S("VTPM.get_is_unique", fresh));

        var secret = (await VtpmRecords.SecretAsync(_fixture.Database, copied, default))!.Ref;
        await S("VM.destroy", clone);
        Assert.Null(await _fixture.Database.TryGetAsync(XenApi.VTPM.ClassName, copied, default));
        Assert.Null(await _fixture.Database.TryGetAsync(XenApi.Secret.ClassName, secret, default));
        Assert.Equal(contents, await S("VTPM.get_contents", vtpm));
    }

    private async Task SetPowerAsync(string vmRef, string power) =>
        await _fixture.Database.UpdateAsync([(XenClasses.VM, vmRef)], (objs, tx) =>
        {
            var vm = objs[0].Clone();
            vm["power_state"] = power;
            tx.Update(vm);
        }, default);

    /// <summary>A session as a directory login makes one: a subject with the role, not the local superuser.</summary>
    private async Task<string> SessionOfAsync(string role)
    {
        var tx = new PoolTransaction();
        var session = tx.Create(XenClasses.SessionSchema);
        var now = DateTime.UtcNow;
        session.Set(XenApi.Session.LastActive, now);
        session.Set(XenApi.Session.ValidationTime, now);
        session.Set(XenApi.Session.IsLocalSuperuser, false);
        session.Set(XenApi.Session.AuthUserSid, $"uid={role},ou=people,dc=corral,dc=test");
        session.Set(XenApi.Session.AuthUserName, role);
        session.Set(XenApi.Session.RbacPermissions, RoleTable.SessionPermissions([RoleTable.FindByNameLabel(role)!.Ref]));
        await _fixture.Database.CommitAsync(tx, default);
        return session.Ref;
    }
}
