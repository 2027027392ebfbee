using Corral.Api.Sessions;
using Corral.Api.Tasks;
using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Corral.Api.Pool;

/// <summary>
/// How many sessions and tasks the pool keeps, and for how long (<c>Corral:Api:Retention</c>); the defaults are xapi's
/// (<c>xapi_globs.ml</c>). How long an idle session lives is <see cref="ApiOptions.SessionIdleTimeout"/>.
/// </summary>
public sealed class RetentionOptions : IOptionsWithProblems
{
    /// <summary>Host-to-host sessions, and root's sessions that name no originator: xapi's <c>max_sessions</c> (400).</summary>
    public int MaxSessions { get; set; } = 400;

    /// <summary>Root's sessions per originator ("XenCenter", "xe", ...): xapi's <c>max_sessions_per_originator</c>.</summary>
    public int MaxSessionsPerOriginator { get; set; } = 500;

    /// <summary>Any other user's sessions: xapi's <c>max_sessions_per_user_name</c>.</summary>
    public int MaxSessionsPerUser { get; set; } = 500;

    /// <summary>Past this many tasks the earliest finished go: xapi's <c>max_tasks</c>.</summary>
    public int MaxTasks { get; set; } = 200;

    /// <summary>A finished task is kept this long: xapi's <c>completed_task_timeout</c> (65 minutes).</summary>
    public TimeSpan CompletedTaskTimeout { get; set; } = TimeSpan.FromMinutes(65);

    /// <summary>A pending task this old that makes no progress goes: xapi's <c>pending_task_timeout</c> (24 h).</summary>
    public TimeSpan PendingTaskTimeout { get; set; } = TimeSpan.FromHours(24);

    /// <summary>How often the collector runs; xapi's database collector runs every 30 seconds.</summary>
    public TimeSpan CollectEvery { get; set; } = TimeSpan.FromSeconds(30);

    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (MaxSessions < 10 || MaxSessionsPerOriginator < 10 || MaxSessionsPerUser < 10)
        {
            problems.Add("Corral:Api:Retention:MaxSessions, MaxSessionsPerOriginator and MaxSessionsPerUser must be at least 10: "
                + "fewer would end the sessions of clients still using them");
        }

        if (MaxTasks < 10)
        {
            problems.Add("Corral:Api:Retention:MaxTasks must be at least 10: clients read a task's result after it finishes");
        }

        if (CompletedTaskTimeout < TimeSpan.FromMinutes(1) || PendingTaskTimeout < TimeSpan.FromHours(1))
        {
            problems.Add("Corral:Api:Retention:CompletedTaskTimeout must be at least a minute and PendingTaskTimeout at least an hour: "
                + "clients read a finished task's result, and long operations stay pending that long");
        }

        if (CollectEvery <= TimeSpan.Zero || CollectEvery > TimeSpan.FromMinutes(10))
        {
            problems.Add("Corral:Api:Retention:CollectEvery must be positive and at most 10 minutes");
        }

        return problems;
    }
}

/// <summary>
/// Keeps the pool's sessions and tasks from growing without bound, as xapi's database collector does
/// (<see cref="SessionRetention"/>, <see cref="TaskRetention"/>): every host ends its own idle local sessions; the
/// master ends the pool's idle and surplus sessions and destroys old tasks (clients see the tasks' <c>del</c> events).
/// </summary>
public sealed class PoolCollector(IPoolDatabase database, MasterState master, SessionService sessions, IOptions<ApiOptions> api,
    IOptions<RetentionOptions> options, TimeProvider time, ILogger<PoolCollector> logger) : BackgroundService
{
    private static readonly EventId TasksExpired = new(1403, "TasksExpired");
    private static readonly EventId PendingTaskDestroyed = new(1404, "PendingTaskDestroyed");

    // Each old pending task's progress at the previous pass, by uuid (xapi's probation table).
    private readonly Dictionary<string, double> _probation = new(StringComparer.Ordinal);

    private SessionLimits Limits => new(api.Value.SessionIdleTimeout, options.Value.MaxSessions, options.Value.MaxSessionsPerOriginator,
        options.Value.MaxSessionsPerUser);

    /// <summary>One pass: this host's local sessions, then (on the master) the pool's sessions and tasks.</summary>
    public async Task CollectAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        sessions.CollectLocalSessions(now, Limits);
        if (!master.IsThisHost)
        {
            return;
        }

        await CollectTasksAsync(now, cancellationToken);
        await sessions.CollectPoolSessionsAsync(now, Limits, cancellationToken);
    }

    /// <summary>Destroys the tasks <see cref="TaskRetention"/> picks; returns how many went.</summary>
    public async Task<int> CollectTasksAsync(DateTime nowUtc, CancellationToken cancellationToken)
    {
        var all = await database.GetAllAsync(XenClasses.Task, cancellationToken);
        var facts = all.Select(t => new TaskFacts(t.Ref, t.Uuid, t.Get(XenApi.Task.Status), t.Get(XenApi.Task.Created), t.Get(XenApi.Task.Finished),
            t.Get(XenApi.Task.Progress))).ToList();
        var limits = new TaskLimits(options.Value.MaxTasks, options.Value.CompletedTaskTimeout, options.Value.PendingTaskTimeout);
        var expired = TaskRetention.Select(facts, nowUtc, limits, _probation);
        if (expired.Count == 0)
        {
            return 0;
        }

        foreach (var task in expired.Where(t => t.WasPending))
        {
            logger.LogWarning(PendingTaskDestroyed, "Destroying task {Uuid}, still pending: {Reason}", task.Uuid, task.Reason);
        }

        // One changed meanwhile (finished, or destroyed by its owner) is left to the next pass.
        var byRef = all.ToDictionary(t => t.Ref, StringComparer.Ordinal);
        var destroyed = (await database.TryDeleteAllAsync(expired.Select(t => byRef[t.Ref]), cancellationToken)).Count;
        logger.LogInformation(TasksExpired, "Destroyed {Count} of {Total} tasks ({Reasons})", destroyed, all.Count,
            string.Join("; ", expired.Select(e => e.Reason.StartsWith("more than", StringComparison.Ordinal) ? e.Reason : "finished or pending too long")
                .Distinct(StringComparer.Ordinal)));
        return destroyed;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.CollectEvery, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                await CollectAsync(stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                logger.LogWarning(ex, "Collecting old sessions and tasks failed; trying again in {Interval}", options.Value.CollectEvery);
            }
        }
    }
}
