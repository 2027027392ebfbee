using Corral.Api.Pool;
using Corral.Api.Sessions;
using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>
/// Sessions and tasks do not pile up (xapi's collector's rules, over a real etcd), a session's reference is on no task,
/// and a password change ends the user's other sessions.
/// </summary>
public sealed class RetentionTests : IAsyncLifetime
{
    private ApiFixture _fixture = null!;
    private IPoolDatabase _db = null!;

    public async Task InitializeAsync()
    {
        _fixture = await ApiFixture.StartAsync(services => services.Configure<RetentionOptions>(o =>
        {
            o.MaxSessionsPerOriginator = 10;
            o.MaxTasks = 10;
        }));
        _db = _fixture.Database;
    }

    public async Task DisposeAsync() => await _fixture.DisposeAsync();

    private Task<object?> Call(string method, params object?[] args) => _fixture.Call(method, args);

    private async Task<string> LoginAsync(string originator, string password = "pw") =>
        (string)(await Call("session.login_with_password", "root", password, "1.0", originator))!;

    private async Task<bool> WorksAsync(string session)
    {
        try
        {
            await Call("pool.get_all", session);
            return true;
        }
        catch (XenApiException ex) when (ex.Code == ErrorCodes.SessionInvalid)
        {
            return false;
        }
    }

    private async Task SetAsync(string className, string reference, Action<XenObject> change) =>
        await _db.UpdateAsync([(className, reference)], (objs, tx) =>
        {
            var o = objs[0].Clone();
            change(o);
            tx.Update(o);
        }, default);

    [Fact]
    public async Task A_client_that_never_logs_out_loses_its_own_oldest_sessions_and_nobody_elses()
    {
        var start = DateTime.UtcNow.AddHours(-2);
        var flood = new List<string>();
        for (var i = 0; i < 13; i++)
        {
            var session = await LoginAsync("flood");
            await SetAsync(XenClasses.Session, session, s => s.Set(XenApi.Session.LastActive, start.AddMinutes(i)));
            flood.Add(session);
        }

        var xencenter = await LoginAsync("XenCenter");
        var idle = await LoginAsync("xe");
        await SetAsync(XenClasses.Session, idle, s => s.Set(XenApi.Session.LastActive, DateTime.UtcNow.AddHours(-25)));

        var sessions = _fixture.Services.GetRequiredService<SessionService>();
        var limits = new SessionLimits(TimeSpan.FromHours(24), 400, 10, 500);
        Assert.Equal(4, await sessions.CollectPoolSessionsAsync(DateTime.UtcNow, limits, default));

        Assert.False(await WorksAsync(idle));
        foreach (var (session, i) in flood.Select((s, i) => (s, i)))
        {
            Assert.Equal(i >= 3, await WorksAsync(session));
        }

        Assert.True(await WorksAsync(xencenter));
        Assert.Equal(0, await sessions.CollectPoolSessionsAsync(DateTime.UtcNow, limits, default));
    }

    [Fact]
    public async Task Old_tasks_go_and_no_task_holds_the_session_that_made_it()
    {
        var session = await LoginAsync("test");
        var async = (string)(await Call("Async.pool.get_all", session))!;
        var now = DateTime.UtcNow;
        var made = new List<string>();
        for (var i = 0; i < 12; i++)
        {
            var task = (string)(await Call("task.create", session, $"T{i}", ""))!;
            await SetAsync(XenClasses.Task, task, t =>
            {
                t.Set(XenApi.Task.Status, TaskStatusType.Success);
                t.Set(XenApi.Task.Finished, now.AddMinutes(i - 60));
            });
            made.Add(task);
        }

        var hung = (string)(await Call("task.create", session, "hung", ""))!;
        await SetAsync(XenClasses.Task, hung, t => t.Set(XenApi.Task.Created, now.AddHours(-25)));

        // A task's record (every session reads them all) holds nothing of the session that made it.
        var records = (Dictionary<string, object?>)(await Call("task.get_all_records", session))!;
        Assert.DoesNotContain(session[OpaqueRef.Prefix.Length..], System.Text.Json.JsonSerializer.Serialize(records), StringComparison.Ordinal);

        var collector = _fixture.Services.GetRequiredService<PoolCollector>();
        await _fixture.Services.GetRequiredService<Corral.Api.Tasks.TaskService>().WaitAsync(async, default);

        // 14 tasks, limit 10: the 4 that finished first go; the hung one is on probation.
        Assert.Equal(4, await collector.CollectTasksAsync(now, default));
        var left = ((List<object?>)(await Call("task.get_all", session))!).Cast<string>().ToHashSet(StringComparer.Ordinal);
        Assert.Equal(made.Skip(4).Append(hung).Append(async).ToHashSet(StringComparer.Ordinal), left);

        // 66 minutes on: every finished task has aged out; the hung one made no progress and goes too.
        Assert.Equal(10, await collector.CollectTasksAsync(now.AddMinutes(66), default));
        Assert.Empty((List<object?>)(await Call("task.get_all", session))!);
    }

    [Fact]
    public async Task A_password_change_ends_the_users_other_sessions()
    {
        var other = await LoginAsync("XenCenter");
        var changer = await LoginAsync("xe");
        await Call("session.change_password", changer, "pw", "pw2");

        Assert.False(await WorksAsync(other));
        Assert.True(await WorksAsync(changer));
        Assert.True(await WorksAsync(await LoginAsync("xe", "pw2")));
    }

    [Fact]
    public async Task A_weaker_password_hash_is_replaced_at_login_and_the_password_still_works()
    {
        await _db.Leases.PutDurableAsync(SessionService.PasswordKey("root"), PasswordHasher.Hash("old-strength", 60_000), default);
        Assert.True(await WorksAsync(await LoginAsync("xe", "old-strength")));
        var stored = await _db.Leases.GetValueAsync(SessionService.PasswordKey("root"), default);
        Assert.StartsWith("pbkdf2-sha256$600000$", stored, StringComparison.Ordinal);
        Assert.True(await WorksAsync(await LoginAsync("xe", "old-strength")));
        await Assert.ThrowsAsync<XenApiException>(() => LoginAsync("xe", "wrong"));
    }

    [Fact]
    public void Retention_options_are_checked_at_start()
    {
        var services = new ServiceCollection();
        Corral.Api.ApiServiceCollectionExtensions.AddXenApi(services);
        services.Configure<RetentionOptions>(o => o.MaxTasks = 1);
        using var provider = services.BuildServiceProvider();
        var refused = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<RetentionOptions>>().Value);
        Assert.Contains("Corral:Api:Retention:MaxTasks", refused.Message, StringComparison.Ordinal);
    }
}
