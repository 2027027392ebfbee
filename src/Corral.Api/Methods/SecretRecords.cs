using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Api.Methods;

/// <summary>The pool's Secret records as the other records use them: made to hold a value, and read by uuid.</summary>
public static class SecretRecords
{
    /// <summary>A new secret holding <paramref name="value"/>, made in <paramref name="tx"/>.</summary>
    public static XenObject Create(PoolTransaction tx, string value)
    {
        ArgumentNullException.ThrowIfNull(tx);
        var secret = tx.Create(XenApi.Secret.Schema);
        secret.Set(XenApi.Secret.Value, value);
        return secret;
    }

    /// <summary>The value of the secret <paramref name="uuid"/> names.</summary>
    /// <exception cref="XenApiException">UUID_INVALID: there is no such secret.</exception>
    public static async Task<string> ValueAsync(IPoolDatabase database, string uuid, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(database);
        var secret = await database.FindByUuidAsync(XenApi.Secret.ClassName, uuid, cancellationToken)
                     ?? throw new XenApiException(ErrorCodes.UuidInvalid, XenApi.Secret.ClassName, uuid);
        return secret.Get(XenApi.Secret.Value);
    }
}
