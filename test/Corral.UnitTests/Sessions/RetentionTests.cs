using Corral.Api.Pool;
using Corral.Api.Sessions;
using Corral.Api.Tasks;
using Corral.Model;
using Xunit;

namespace Corral.UnitTests.Sessions;

/// <summary>Which sessions and tasks the pool ends, by xapi's collector's rules (db_gc.ml).</summary>
public sealed class RetentionTests
{
    private static readonly DateTime Now = new(2026, 12, 4, 12, 0, 0, DateTimeKind.Utc);
    private static readonly SessionLimits Limits = new(TimeSpan.FromHours(24), MaxSessions: 3, MaxPerOriginator: 2, MaxPerUser: 2);

    private static SessionFacts Session(string name, double minutesAgo, string user = "root", string originator = "", bool pool = false) =>
        new("OpaqueRef:" + name, name, Now.AddMinutes(-minutesAgo), pool, user, originator);

    [Fact]
    public void Each_group_keeps_its_most_recently_active_up_to_its_limit()
    {
        SessionFacts[] sessions =
        [
            // Root, originator "flood": 4 sessions, limit 2 -> the two least recently active go.
            Session("f1", 1, originator: "flood"), Session("f2", 2, originator: "flood"), Session("f3", 3, originator: "flood"),
            Session("f4", 4, originator: "flood"),
            // Root with another originator, alone in its group: kept, however many "flood" made.
            Session("x1", 500, originator: "XenCenter"),
            // Root without originator: the "external" group, limit MaxSessions (3).
            Session("e1", 1), Session("e2", 2), Session("e3", 3), Session("e4", 4),
            // Another user: by name, whatever the originator.
            Session("a1", 1, user: "alice", originator: "one"), Session("a2", 2, user: "alice", originator: "two"),
            Session("a3", 3, user: "alice"),
            // Host-to-host sessions: their own group.
            Session("p1", 1, pool: true),
        ];

        var expired = SessionRetention.Select(sessions, Now, Limits);

        Assert.Equal(["a3", "e4", "f3", "f4"], expired.Select(e => e.Uuid).Order(StringComparer.Ordinal));
        Assert.Equal("originator:flood", expired.Single(e => e.Uuid == "f4").Group);
        Assert.Equal("username:alice", expired.Single(e => e.Uuid == "a3").Group);
        Assert.Equal("external", expired.Single(e => e.Uuid == "e4").Group);
        Assert.All(expired, e => Assert.StartsWith("more than", e.Reason, StringComparison.Ordinal));
    }

    [Fact]
    public void A_session_idle_longer_than_the_timeout_ends_whatever_its_group_holds()
    {
        var expired = SessionRetention.Select([Session("old", 24 * 60 + 1, originator: "xe"), Session("young", 24 * 60 - 1, originator: "xe")],
            Now, Limits);
        var only = Assert.Single(expired);
        Assert.Equal("old", only.Uuid);
        Assert.StartsWith("idle since", only.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Local_sessions_expire_when_idle_are_bounded_and_a_password_change_ends_only_password_ones()
    {
        var table = new LocalSessionTable();
        var emergency = table.Add("root", pool: false, Now);
        var peer = table.Add("root", pool: true, Now);
        Assert.True(table.Touch(emergency, Now.AddHours(23), TimeSpan.FromHours(24)));
        Assert.False(table.Touch(peer, Now.AddHours(25), TimeSpan.FromHours(24)));
        Assert.False(table.Contains(peer));

        var keep = table.Add("root", pool: false, Now.AddHours(23));
        var other = table.Add("root", pool: false, Now.AddHours(23));
        var peer2 = table.Add("root", pool: true, Now.AddHours(23));
        Assert.Equal(2, table.EndPasswordSessionsOf("root", keep).Count);
        Assert.False(table.Contains(other));
        Assert.False(table.Contains(emergency));
        Assert.True(table.Contains(keep) && table.Contains(peer2));

        for (var i = 0; i < 5; i++)
        {
            table.Add("root", pool: true, Now.AddHours(23).AddMinutes(i + 1));
        }

        // Six host-to-host sessions, limit 3: the three least recently used go.
        Assert.Equal(3, table.Collect(Now.AddHours(24), Limits).Count);
        Assert.False(table.Contains(peer2));
        Assert.Equal(4, table.Count);
    }

    private static TaskFacts Task(string name, TaskStatusType status, double createdMinutesAgo, double finishedMinutesAgo = 0, double progress = 0) =>
        new("OpaqueRef:" + name, name, status, Now.AddMinutes(-createdMinutesAgo),
            status == TaskStatusType.Pending ? DateTime.UnixEpoch : Now.AddMinutes(-finishedMinutesAgo), progress);

    [Fact]
    public void Tasks_go_when_finished_long_ago_or_hung_and_past_the_limit_only_finished_ones_go_earliest_first()
    {
        var limits = new TaskLimits(MaxTasks: 4, TimeSpan.FromMinutes(65), TimeSpan.FromHours(24));
        var probation = new Dictionary<string, double>(StringComparer.Ordinal);
        List<TaskFacts> tasks =
        [
            Task("done-long-ago", TaskStatusType.Success, 70, 66),
            Task("c1", TaskStatusType.Failure, 10, 9), Task("c2", TaskStatusType.Success, 10, 8), Task("c3", TaskStatusType.Cancelled, 10, 7),
            Task("c4", TaskStatusType.Success, 10, 6),
            Task("stuck", TaskStatusType.Pending, 25 * 60, progress: 0.1),
            Task("slow", TaskStatusType.Pending, 25 * 60, progress: 0.1),
            Task("p1", TaskStatusType.Pending, 1), Task("p2", TaskStatusType.Pending, 1), Task("p3", TaskStatusType.Pending, 1),
        ];

        // First pass: the old pending tasks are put on probation; past the limit of 4, every finished task goes (never
        // a pending one, so 6 pending tasks remain, over the limit).
        var first = TaskRetention.Select(tasks, Now, limits, probation);
        Assert.Equal(["c1", "c2", "c3", "c4", "done-long-ago"], first.Select(t => t.Uuid).Order(StringComparer.Ordinal));
        Assert.DoesNotContain(first, t => t.WasPending);
        Assert.Equal(2, probation.Count);

        // Second pass: "slow" moved on, "stuck" did not.
        tasks = [.. tasks.Where(t => t.Status == TaskStatusType.Pending && t.Uuid != "slow"), Task("slow", TaskStatusType.Pending, 25 * 60, progress: 0.2)];
        var second = TaskRetention.Select(tasks, Now.AddSeconds(30), limits, probation);
        var hung = Assert.Single(second);
        Assert.Equal("stuck", hung.Uuid);
        Assert.True(hung.WasPending);
    }

    [Fact]
    public void Retention_settings_that_would_end_what_clients_use_are_refused_with_their_names()
    {
        Assert.Empty(new RetentionOptions().Problems());
        Assert.Contains(new RetentionOptions { MaxSessionsPerOriginator = 2 }.Problems(),
            p => p.StartsWith("Corral:Api:Retention:MaxSessions", StringComparison.Ordinal));
        Assert.Contains(new RetentionOptions { MaxTasks = 0 }.Problems(), p => p.StartsWith("Corral:Api:Retention:MaxTasks", StringComparison.Ordinal));
        Assert.Contains(new RetentionOptions { CompletedTaskTimeout = TimeSpan.FromSeconds(5) }.Problems(),
            p => p.Contains("CompletedTaskTimeout", StringComparison.Ordinal));
        Assert.Contains(new RetentionOptions { CollectEvery = TimeSpan.Zero }.Problems(), p => p.Contains("CollectEvery", StringComparison.Ordinal));
    }
}
