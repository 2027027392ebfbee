using Corral.Model;

namespace Corral.Api.AllowedOperations;

/// <summary>What the task rule reads.</summary>
/// <param name="Cancellable">The work running under the task stops when asked to (xapi marks such tasks cancellable).</param>
public sealed record TaskFacts(string Ref, TaskStatusType Status, bool Cancellable);

/// <summary>
/// A task allows <c>cancel</c> while it is pending and what runs under it honours a cancel request, as xapi lists it
/// (TaskHelper.set_cancellable); never <c>destroy</c>.
/// </summary>
public static class TaskOperationRules
{
    public static IReadOnlyList<TaskAllowedOperations> Allowed(TaskFacts task, ImplementedOperations implemented) =>
        task.Status == TaskStatusType.Pending && task.Cancellable && implemented.Has(TaskAllowedOperations.Cancel) ? [TaskAllowedOperations.Cancel] : [];
}
