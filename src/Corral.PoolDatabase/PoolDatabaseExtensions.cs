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
            ? await database.GetAsync(className, reference, cancellationToken).ConfigureAwait(false)
            : throw XenApiException.HandleInvalid(className, reference);
}
