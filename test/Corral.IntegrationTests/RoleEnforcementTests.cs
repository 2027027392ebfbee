using Corral.Api.Dispatch;
using Corral.Model;
using Corral.PoolDatabase;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>
/// Every message Corral serves, called by every role it is denied to (issue 16's attack campaign): each call is refused
/// with RBAC_PERMISSION_DENIED naming the message's permission, before its arguments are even read (they are junk
/// here), and the pool is unchanged. Sessions are made as a login through the directory makes them (subject, SID, the
/// roles' permissions), straight in the pool database.
/// </summary>
public sealed class RoleEnforcementTests : IAsyncLifetime
{
    private static readonly string[] RoleNames = ["read-only", "vm-operator", "vm-admin", "vm-power-admin", "pool-operator"];
    private ApiFixture _fixture = null!;
    private IPoolDatabase _db = null!;

    public async Task InitializeAsync()
    {
        _fixture = await ApiFixture.StartAsync();
        _db = _fixture.Database;
    }

    public async Task DisposeAsync() => await _fixture.DisposeAsync();

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
        await _db.CommitAsync(tx, default);
        return session.Ref;
    }

    [Fact]
    public async Task Every_message_is_refused_to_every_role_that_lacks_its_permission()
    {
        var methods = _fixture.Api.Registry.Methods.Where(m => m.RequiresSession && m.IsImplemented && m.Schema?.Lifecycle != Lifecycle.Removed).ToList();
        var before = await _db.GetAllAsync(XenClasses.VM, default);
        var refused = 0;
        foreach (var role in RoleNames)
        {
            var session = await SessionOfAsync(role);
            var permissions = RoleTable.SessionPermissions([RoleTable.FindByNameLabel(role)!.Ref]).ToHashSet(StringComparer.Ordinal);
            foreach (var method in methods)
            {
                var permission = RoleTable.PermissionFor(method.Name, null);
                if (permissions.Contains(permission) || (!RoleTable.IsPermission(permission) && permissions.Contains(RoleTable.PoolAdmin)))
                {
                    continue;
                }

                var junk = method.Parameters.Select(_ => (object?)"junk").ToList();
                var error = await Assert.ThrowsAsync<XenApiException>(() => _fixture.Api.InvokeAsync(method.Name, [session, .. junk], "192.0.2.7", default));
                Assert.True(error.ErrorDescription is [ErrorCodes.RbacPermissionDenied, var named, _] && named == permission,
                    $"{method.Name} as {role}: {string.Join(", ", error.ErrorDescription)}");
                var asynchronous = await Assert.ThrowsAsync<XenApiException>(() => _fixture.Api.InvokeAsync("Async." + method.Name, [session, .. junk], "192.0.2.7", default));
                Assert.Equal(ErrorCodes.RbacPermissionDenied, asynchronous.ErrorDescription[0]);
                refused++;
            }
        }

        // read-only alone lacks several hundred; every role lacks pool-admin's own.
        Assert.True(refused > 1000, $"only {refused} refusals");
        Assert.Empty(await _db.GetAllAsync(XenClasses.Task, default));
        Assert.Equal(before.Count, (await _db.GetAllAsync(XenClasses.VM, default)).Count);
    }

    [Fact]
    public async Task What_a_role_holds_passes_the_check_and_meets_the_messages_own_errors()
    {
        var reader = await SessionOfAsync("read-only");
        var missing = await Assert.ThrowsAsync<XenApiException>(() => _fixture.Api.InvokeAsync("VM.get_record", [reader, "OpaqueRef:nothing"], "192.0.2.7", default));
        Assert.Equal(ErrorCodes.HandleInvalid, missing.ErrorDescription[0]);
        Assert.NotNull(await _fixture.Api.InvokeAsync("VM.get_all", [reader], "192.0.2.7", default));
    }
}
