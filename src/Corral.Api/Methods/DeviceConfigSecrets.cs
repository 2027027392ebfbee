using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Api.Methods;

/// <summary>
/// Passwords in an SR's device_config, as xapi keeps them: never in the PBD's <c>device_config</c>, which every session
/// reads (the read-only role included), but in a secret of the PBD's own (the Secret class, pool-admin and
/// pool-operator only), the key then <c>&lt;key&gt;_secret</c> naming the secret's uuid: <c>chappassword</c> becomes
/// <c>chappassword_secret</c>, <c>cifspassword</c> <c>cifspassword_secret</c>. A client may send the <c>_secret</c>
/// form itself (a secret it made with <c>secret.create</c>, which the PBD copies, so that the client may destroy
/// its own). The drivers read the plain form: <see cref="ResolveAsync"/> gives it back where the storage is reached.
/// </summary>
public static class DeviceConfigSecrets
{
    public const string Suffix = "_secret";

    private const string PasswordSuffix = "password";

    /// <summary>
    /// The device_config a new PBD keeps: each <c>*password</c> key moved to a new secret made in <paramref name="tx"/>
    /// (xapi's <c>move_passwds_to_secrets</c>), each <c>*password_secret</c> key naming a copy of its secret
    /// (<c>duplicate_passwds</c>: every PBD a secret of its own, deleted with it).
    /// </summary>
    /// <exception cref="XenApiException">UUID_INVALID: a <c>_secret</c> key names no secret.</exception>
    public static async Task<Dictionary<string, string>> ForNewPbdAsync(IPoolDatabase database, PoolTransaction tx, IReadOnlyDictionary<string, string> config,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tx);
        var kept = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in config)
        {
            if (key.EndsWith(PasswordSuffix, StringComparison.Ordinal))
            {
                kept[key + Suffix] = SecretRecords.Create(tx, value).Get(XenApi.Secret.Uuid);
            }
            else if (key.EndsWith(PasswordSuffix + Suffix, StringComparison.Ordinal))
            {
                kept[key] = SecretRecords.Create(tx, await SecretRecords.ValueAsync(database, value, cancellationToken)).Get(XenApi.Secret.Uuid);
            }
            else
            {
                kept[key] = value;
            }
        }

        return kept;
    }

    /// <summary>
    /// The device_config as SM's drivers read it: each <c>*password_secret</c> key replaced by its plain key holding the
    /// secret's value (a plain key given as well stays as given).
    /// </summary>
    /// <exception cref="XenApiException">UUID_INVALID: a <c>_secret</c> key names no secret.</exception>
    public static async Task<Dictionary<string, string>> ResolveAsync(IPoolDatabase database, IReadOnlyDictionary<string, string> config,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(config);
        var resolved = new Dictionary<string, string>(config, StringComparer.Ordinal);
        foreach (var (key, uuid) in config)
        {
            if (key.EndsWith(PasswordSuffix + Suffix, StringComparison.Ordinal))
            {
                resolved.Remove(key);
                resolved.TryAdd(key[..^Suffix.Length], await SecretRecords.ValueAsync(database, uuid, cancellationToken));
            }
        }

        return resolved;
    }

    /// <summary>xapi's <c>clean_out_passwds</c>: the secrets a PBD's device_config names go with it (in <paramref name="tx"/>).</summary>
    public static async Task DeleteAsync(IPoolDatabase database, PoolTransaction tx, IReadOnlyDictionary<string, string> config, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(database);
        ArgumentNullException.ThrowIfNull(tx);
        foreach (var (key, uuid) in config)
        {
            if (key.EndsWith(PasswordSuffix + Suffix, StringComparison.Ordinal)
                && await database.FindByUuidAsync(XenApi.Secret.ClassName, uuid, cancellationToken) is { } secret)
            {
                tx.Delete(secret);
            }
        }
    }
}
