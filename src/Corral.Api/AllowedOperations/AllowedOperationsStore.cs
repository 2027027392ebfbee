using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Api.AllowedOperations;

/// <summary>Writes objects' <c>allowed_operations</c> and removes stale <c>current_operations</c> entries, guarded.</summary>
public static class AllowedOperationsStore
{
    /// <summary>
    /// Writes the object's allowed operations if they differ from what it holds: the object is read again and the list
    /// computed from that copy (its dependencies from <paramref name="facts"/>), guarded by the revision read, a lost
    /// race reading again. Returns what was written, or null when nothing was.
    /// </summary>
    /// <exception cref="XenApiException">HANDLE_INVALID when the object has gone.</exception>
    public static async Task<IReadOnlyList<string>?> WriteAsync(IPoolDatabase database, AllowedOperationsCalculator calculator, OperationFacts facts,
        string className, string reference, CancellationToken cancellationToken)
    {
        IReadOnlyList<string>? written = null;
        await database.UpdateAsync([(className, reference)], (objs, tx) =>
        {
            written = null;
            var computed = calculator.Compute(facts, objs[0]);
            if (computed is null || AllowedOperationsCalculator.SameSet(computed, objs[0]))
            {
                return;
            }

            var changed = objs[0].Clone();
            changed["allowed_operations"] = computed.Cast<object?>().ToList();
            tx.Update(changed);
            written = computed;
        }, cancellationToken);
        return written;
    }

    /// <summary>
    /// Entries of the object's <c>current_operations</c> whose task is gone or finished (the operation cannot be
    /// running any more: its end was not recorded because the process that ran it died).
    /// </summary>
    public static IReadOnlyList<string> StaleEntries(XenObject obj, Func<string, XenObject?> findTask) =>
        obj.Schema.Find("current_operations") is null
            ? []
            : obj.GetStringMap("current_operations").Keys
                .Where(task => findTask(task)?.GetString("status") is not ("pending" or "cancelling"))
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
