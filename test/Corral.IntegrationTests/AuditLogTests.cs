using Corral.Api.Audit;
using Corral.Api.Sessions;
using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>
/// The audit log over a real etcd: every call that changes something, allowed or denied, with who made it, the objects
/// it named and its outcome; reads, passwords and session references never in it; read back from a time on.
/// </summary>
public sealed class AuditLogTests : IAsyncLifetime
{
    private const string HostRef = "OpaqueRef:audited-host";
    private readonly string _state = Path.Combine(Path.GetTempPath(), "corral-audit-test-" + Guid.NewGuid().ToString("N")[..8]);
    private ApiFixture _fixture = null!;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_state);
        _fixture = await ApiFixture.StartAsync(services => services.Configure<ApiOptions>(o => (o.StateDirectory, o.HostRef) = (_state, HostRef)));
    }

    public async Task DisposeAsync()
    {
        await _fixture.DisposeAsync();
        if (Directory.Exists(_state))
        {
            Directory.Delete(_state, recursive: true);
        }
    }

    private Task<object?> Call(string method, params object?[] args) => _fixture.Call(method, args);

    private async Task<string[]> LinesAsync(Func<string[], bool> until)
    {
        var file = Path.Combine(_state, AuditLog.FileName);
        for (var attempt = 0; attempt < 100; attempt++)
        {
            var lines = File.Exists(file) ? await File.ReadAllLinesAsync(file) : [];
            if (until(lines))
            {
                return lines;
            }

            await Task.Delay(50);
        }

        return File.Exists(file) ? await File.ReadAllLinesAsync(file) : [];
    }

    [Fact]
    public async Task Each_change_is_recorded_with_who_what_and_how_it_ended_and_nothing_secret()
    {
        var root = await _fixture.LoginAsync();
        await Assert.ThrowsAsync<XenApiException>(() => Call("session.login_with_password", "root", "not-the-password"));
        var vm = (string)(await Call("VM.create", root, new Dictionary<string, object?> { ["name_label"] = "audited" }))!;
        await Call("VM.get_all", root);
        await Call("VM.set_name_label", root, vm, "audited twice");
        await Assert.ThrowsAsync<XenApiException>(() => Call("VM.destroy", root, "OpaqueRef:gone"));

        var tx = new PoolTransaction();
        var reader = tx.Create(XenClasses.SessionSchema);
        reader.Set(XenApi.Session.LastActive, DateTime.UtcNow);
        reader.Set(XenApi.Session.AuthUserSid, "uid=rory,ou=people,dc=corral,dc=test");
        reader.Set(XenApi.Session.AuthUserName, "rory");
        reader.Set(XenApi.Session.RbacPermissions, RoleTable.SessionPermissions([RoleTable.FindByNameLabel("read-only")!.Ref]));
        await _fixture.Database.CommitAsync(tx, default);
        await Assert.ThrowsAsync<XenApiException>(() => Call("VM.destroy", reader.Ref, vm));

        var lines = await LinesAsync(l => l.Length >= 6);
        Assert.Equal(6, lines.Length);
        Assert.Contains(lines, l => l.Contains("'session.login_with_password' (('uname' 'root' '' ''))", StringComparison.Ordinal)
            && l.Contains("'LOCAL_SUPERUSER' 'root' 'ALLOWED' 'OK'", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("'ALLOWED' 'ERROR:SESSION_AUTHENTICATION_FAILED' 'API' 'session.login_with_password'", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("'VM.set_name_label' (('self' 'audited' '", StringComparison.Ordinal) && l.Contains("'ALLOWED' 'OK'", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("'ERROR:HANDLE_INVALID' 'API' 'VM.destroy' (('self' '' '' 'OpaqueRef:gone'))", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("'uid=rory,ou=people,dc=corral,dc=test' 'rory' 'DENIED' 'ERROR:RBAC_PERMISSION_DENIED' 'API' 'VM.destroy' (('self' 'audited twice'",
            StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.Contains("VM.get_all", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.Contains("not-the-password", StringComparison.Ordinal) || l.Contains("'pw'", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.Contains(root, StringComparison.Ordinal) || l.Contains(reader.Ref, StringComparison.Ordinal));

        // Read back from a time on: all of it from before the first, none from after the last.
        var audit = _fixture.Services.GetRequiredService<AuditLog>();
        using var all = new MemoryStream();
        await audit.WriteSinceAsync("2020-01-01", all, default);
        Assert.Equal(6, System.Text.Encoding.UTF8.GetString(all.ToArray()).Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        using var none = new MemoryStream();
        await audit.WriteSinceAsync(DateTime.UtcNow.AddMinutes(1).ToString("yyyy-MM-ddTHH:mm:ss", System.Globalization.CultureInfo.InvariantCulture), none, default);
        Assert.Equal(0, none.Length);
    }

    [Fact]
    public async Task The_master_appends_a_slaves_line_as_it_came_and_only_a_whole_audit_line()
    {
        var root = await _fixture.LoginAsync();
        var line = AuditLine.Format(DateTime.UtcNow, "lab-host2", "trackid=abc", "S-1-5-21-7", "rory", allowed: true, "OK", http: true,
            "http/connect_console_ws", [new AuditArgument("VM", "web", "1f0c", "OpaqueRef:1")]);

        // Not the master (yet): the line belongs on the master.
        var slave = await Assert.ThrowsAsync<XenApiException>(() => Call(AuditForwarder.AppendMethod, root, line));
        Assert.Equal(ErrorCodes.HostIsSlave, slave.Code);

        _fixture.Services.GetRequiredService<Corral.Api.Pool.MasterState>().Set(HostRef);
        await Call(AuditForwarder.AppendMethod, root, line);
        foreach (var bad in new[] { "", "[20261205T04:30:12.345Z|audit|forged", line + "\n" + line, new string('x', AuditLog.MaxForwardedLine + 1) })
        {
            var refused = await Assert.ThrowsAsync<XenApiException>(() => Call(AuditForwarder.AppendMethod, root, bad));
            Assert.Equal(ErrorCodes.InvalidValue, refused.Code);
        }

        // A read-only session may not append (pool-admin only, as in xapi).
        var tx = new PoolTransaction();
        var reader = tx.Create(XenClasses.SessionSchema);
        reader.Set(XenApi.Session.LastActive, DateTime.UtcNow);
        reader.Set(XenApi.Session.RbacPermissions, RoleTable.SessionPermissions([RoleTable.FindByNameLabel("read-only")!.Ref]));
        await _fixture.Database.CommitAsync(tx, default);
        var denied = await Assert.ThrowsAsync<XenApiException>(() => Call(AuditForwarder.AppendMethod, reader.Ref, line));
        Assert.Equal(ErrorCodes.RbacPermissionDenied, denied.Code);

        // The slave's line as it came (its host, its time); the append itself is not another record.
        var lines = await LinesAsync(l => l.Any(x => x == line));
        Assert.Contains(line, lines);
        Assert.DoesNotContain(lines, l => l.Contains("'pool.audit_log_append'", StringComparison.Ordinal) && !l.Contains("DENIED", StringComparison.Ordinal));
    }
}
