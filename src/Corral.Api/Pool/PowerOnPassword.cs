using Corral.HighAvailability;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Api.Pool;

/// <summary>The BMC password a host's <c>power_on_config</c> gives, for setting it and for the fence agent using it.</summary>
public static class PowerOnPassword
{
    /// <summary>
    /// The value of the secret <c>power_on_password_secret</c> names (UUID_INVALID when it does not exist), else a plain
    /// <c>power_on_password</c>; null when the config has neither.
    /// </summary>
    public static async Task<string?> ReadAsync(IPoolDatabase database, IReadOnlyDictionary<string, string> config, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(database);
        ArgumentNullException.ThrowIfNull(config);
        if (config.GetValueOrDefault(PowerFencing.PasswordSecretKey) is { Length: > 0 } uuid)
        {
            return await Methods.SecretRecords.ValueAsync(database, uuid, cancellationToken);
        }

        return config.GetValueOrDefault(PowerFencing.PasswordKey) is { Length: > 0 } plain ? plain : null;
    }
}
