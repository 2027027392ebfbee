using Corral.Model;

namespace Corral.PoolDatabase;

public static class PoolDatabaseExtensions
{
    /// <summary>
    /// An object a caller named by reference (an API argument): HANDLE_INVALID for a malformed reference as for an
    /// unknown one, as xapi answers both.
    /// </summary>
    public static async Task<XenObject> GetArgumentAsync(this IPoolDatabase database, string className, string reference, CancellationToken cancellationToken) =>
        OpaqueRef.IsWellFormed(reference)
            ? await database.GetAsync(className, reference, cancellationToken)
            : throw XenApiException.HandleInvalid(className, reference);

    /// <summary>
    /// Commits, and reports a lost race (an object changed or went since it was read) as false rather than as an
    /// exception: for writes whose caller simply reads again on its next pass.
    /// </summary>
    public static async Task<bool> TryCommitAsync(this IPoolDatabase database, PoolTransaction transaction, CancellationToken cancellationToken)
    {
        try
        {
            await database.CommitAsync(transaction, cancellationToken);
            return true;
        }
        catch (ConcurrentUpdateException)
        {
            return false;
        }
    }

    /// <summary>
    /// Deletes objects <paramref name="perTransaction"/> to a transaction, for collectors: a transaction that loses a
    /// race (one of its objects changed or went since it was read) deletes nothing and is left to the next pass.
    /// Returns the objects deleted.
    /// </summary>
    public static async Task<IReadOnlyList<XenObject>> TryDeleteAllAsync(this IPoolDatabase database, IEnumerable<XenObject> objects,
        CancellationToken cancellationToken, int perTransaction = 100)
    {
        var deleted = new List<XenObject>();
        foreach (var chunk in objects.Chunk(perTransaction))
        {
            var transaction = new PoolTransaction();
            foreach (var obj in chunk)
            {
                transaction.Delete(obj);
            }

            if (await database.TryCommitAsync(transaction, cancellationToken))
            {
                deleted.AddRange(chunk);
            }
        }

        return deleted;
    }
}
