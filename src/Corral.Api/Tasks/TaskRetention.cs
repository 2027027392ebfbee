using Corral.Model;

namespace Corral.Api.Tasks;

/// <summary>What the task collector needs to know of one task.</summary>
public sealed record TaskFacts(string Ref, string Uuid, TaskStatusType Status, DateTime CreatedUtc, DateTime FinishedUtc, double Progress)
{
    public bool Completed => Status is TaskStatusType.Success or TaskStatusType.Failure or TaskStatusType.Cancelled;
}

/// <summary>A task to destroy, and why (for the log).</summary>
public sealed record ExpiredTask(string Ref, string Uuid, bool WasPending, string Reason);

/// <summary>How many tasks the pool keeps, and for how long: xapi's figures (<c>xapi_globs.ml</c>).</summary>
public sealed record TaskLimits(int MaxTasks, TimeSpan CompletedTimeout, TimeSpan PendingTimeout);

/// <summary>
/// Which tasks the pool destroys, decided as xapi's database collector (<c>db_gc.ml</c>, <c>timeout_tasks</c>) decides:
/// a completed task finished longer ago than <see cref="TaskLimits.CompletedTimeout"/>; a pending task created longer
/// ago than <see cref="TaskLimits.PendingTimeout"/> that made no progress since the previous pass (a task still moving is
/// spared however old); and, past <see cref="TaskLimits.MaxTasks"/>, the completed tasks that finished first. A pending
/// task is never destroyed for the count.
/// </summary>
public static class TaskRetention
{
    /// <param name="probation">
    /// The progress of each old pending task at the previous pass, by uuid; replaced by this pass's (the caller keeps it).
    /// </param>
    public static IReadOnlyList<ExpiredTask> Select(IReadOnlyList<TaskFacts> tasks, DateTime nowUtc, TaskLimits limits,
        Dictionary<string, double> probation)
    {
        var completed = tasks.Where(t => t.Completed).ToList();
        var pending = tasks.Where(t => !t.Completed).ToList();
        var completedOld = completed.Where(t => nowUtc - t.FinishedUtc > limits.CompletedTimeout).ToList();
        var pendingOld = pending.Where(t => nowUtc - t.CreatedUtc > limits.PendingTimeout).ToList();
        var hung = pendingOld.Where(t => probation.TryGetValue(t.Uuid, out var before) && t.Progress - before <= double.Epsilon).ToList();
        probation.Clear();
        foreach (var task in pendingOld)
        {
            probation[task.Uuid] = task.Progress;
        }

        var expired = completedOld.Select(t => new ExpiredTask(t.Ref, t.Uuid, false, $"finished at {t.FinishedUtc:u}"))
            .Concat(hung.Select(t => new ExpiredTask(t.Ref, t.Uuid, true, $"pending since {t.CreatedUtc:u} without progress")))
            .ToList();
        var young = tasks.Except(completedOld).Except(hung).ToList();
        var overflow = young.Count - limits.MaxTasks;
        if (overflow > 0)
        {
            expired.AddRange(young.Where(t => t.Completed).OrderBy(t => t.FinishedUtc).ThenBy(t => t.Ref, StringComparer.Ordinal).Take(overflow)
                .Select(t => new ExpiredTask(t.Ref, t.Uuid, false, $"more than {limits.MaxTasks} tasks")));
        }

        return expired;
    }
}
