using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Api.AllowedOperations;

/// <summary>Finds and removes stale <c>current_operations</c> entries (guarded writes of the objects themselves).</summary>
public static class StaleCurrentOperations
{
    /// <summary>
    /// Entries of the object's <c>current_operations</c> whose task is gone or finished (the operation cannot be
    /// running any more: its end was not recorded because the process that ran it died).
    /// </summary>
    public static IReadOnlyList<string> StaleEntries(XenObject obj, Func<string, XenObject?> findTask) =>
        obj.Schema.Find("current_operations") is null
            ? []
            : obj.GetStringMap("current_operations").Keys
                .Where(task => findTask(task)?.Get(XenApi.Task.Status) is not (TaskStatusType.Pending or TaskStatusType.Cancelling))
                .ToList();

    /// <summary>Removes the given entries (those still there) from the object's <c>current_operations</c>.</summary>
    public static async Task RemoveEntriesAsync(IPoolDatabase database, string className, string reference, IReadOnlyCollection<string> tasks,
        CancellationToken cancellationToken) =>
        await database.UpdateAsync([(className, reference)], (objs, tx) =>
        {
            var ops = (Dictionary<string, object?>)objs[0]["current_operations"]!;
            var removed = false;
            foreach (var task in tasks)
            {
                removed |= ops.Remove(task);
            }

            if (removed)
            {
                var cleaned = objs[0].Clone();
                cleaned["current_operations"] = ops;
                tx.Update(cleaned);
            }
        }, cancellationToken);
}
