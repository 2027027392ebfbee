using Corral.Api.Sessions;
using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Corral.Api.Auth;

/// <summary>
/// The pool's external authentication: which directory its hosts' <c>external_auth_*</c> fields name, turning it on
/// and off for the whole pool (<c>pool.enable_external_auth</c>, <c>pool.disable_external_auth</c>), and the directory's
/// answers for logins and <c>auth.*</c>. The password of the account that searches the directory (<c>config:pass</c>)
/// is kept apart, in a key no XenAPI call reads, and left out of the hosts' records.
/// </summary>
public sealed class ExternalAuth(IPoolDatabase database, IEnumerable<IExternalDirectory> directories, IOptions<ApiOptions> options, ILogger<ExternalAuth> logger)
{
    public const string BindPasswordKey = PoolKeys.Auth + "external-auth/bind-password";
    public const string PassKey = "pass";

    private static readonly EventId Enabled = new(1306, "ExternalAuthEnabled");
    private static readonly EventId Disabled = new(1307, "ExternalAuthDisabled");

    /// <summary>The auth types Corral has a directory for.</summary>
    public IReadOnlyList<string> Types => directories.Select(d => d.AuthType).ToList();

    /// <summary>The directory this host's record names and its settings; null when external authentication is off.</summary>
    /// <exception cref="XenApiException">AUTH_UNKNOWN_TYPE: the record names a type Corral has no directory for.</exception>
    public async Task<(IExternalDirectory Directory, DirectorySettings Settings)?> CurrentAsync(CancellationToken cancellationToken)
    {
        var host = OpaqueRef.IsWellFormed(options.Value.HostRef)
            ? await database.TryGetAsync(XenClasses.Host, options.Value.HostRef, cancellationToken)
            : null;
        var type = host?.Get(XenApi.Host.ExternalAuthType) ?? "";
        if (host is null || type.Length == 0)
        {
            return null;
        }

        var directory = Find(type) ?? throw new XenApiException(ErrorCodes.AuthUnknownType, type);
        var password = await database.Leases.GetValueAsync(BindPasswordKey, cancellationToken);
        return (directory, new DirectorySettings(type, host.Get(XenApi.Host.ExternalAuthServiceName), host.Get(XenApi.Host.ExternalAuthConfiguration), password));
    }

    /// <summary>The directory, or AUTH_IS_DISABLED when external authentication is off.</summary>
    public async Task<(IExternalDirectory Directory, DirectorySettings Settings)> RequireAsync(CancellationToken cancellationToken) =>
        await CurrentAsync(cancellationToken) ?? throw new XenApiException(ErrorCodes.AuthIsDisabled);

    /// <summary>
    /// Asks the directory <paramref name="current"/> names; one that cannot be asked is AUTH_SERVICE_ERROR, as xapi
    /// reports a directory it could not query.
    /// </summary>
    public static async Task<T?> AskAsync<T>((IExternalDirectory Directory, DirectorySettings Settings) current,
        Func<IExternalDirectory, DirectorySettings, Task<T?>> question)
    {
        try
        {
            return await question(current.Directory, current.Settings);
        }
        catch (DirectoryUnavailableException ex)
        {
            throw new XenApiException(ErrorCodes.AuthServiceError, ex.Message);
        }
    }

    private IExternalDirectory? Find(string type) => directories.FirstOrDefault(d => string.Equals(d.AuthType, type, StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// <c>pool.enable_external_auth</c>, as xapi: refused if any host has it on already; the directory checked from here
    /// (this host serves the pool's logins) before any host's record says it is on; then every host's record at once.
    /// </summary>
    public async Task EnableAsync(IReadOnlyDictionary<string, string> config, string serviceName, string authType, CancellationToken cancellationToken)
    {
        var hosts = await database.GetAllAsync(XenClasses.Host, cancellationToken);
        if (hosts.FirstOrDefault(h => h.Get(XenApi.Host.ExternalAuthType).Length > 0) is { } enabled)
        {
            throw new XenApiException(ErrorCodes.PoolAuthAlreadyEnabled, enabled.Ref);
        }

        var directory = Find(authType) ?? throw new XenApiException(ErrorCodes.AuthUnknownType, authType);
        var kept = config.Where(kv => kv.Key != PassKey).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        var settings = new DirectorySettings(directory.AuthType, serviceName, kept, config.GetValueOrDefault(PassKey));
        var me = options.Value.HostRef;
        if (directory.Problems(settings) is { Count: > 0 } problems)
        {
            throw new XenApiException(ErrorCodes.PoolAuthEnableFailed, me, string.Join("; ", problems));
        }

        var pools = await database.GetAllAsync(XenClasses.Pool, cancellationToken);
        try
        {
            // An LDAP directory is checked; Active Directory is joined (its computer account's password kept in place of the administrator's).
            settings = await directory.JoinAsync(settings, new DirectoryJoin(pools.Count > 0 ? pools[0].Uuid : me), cancellationToken);
        }
        catch (DirectoryUnavailableException ex)
        {
            throw new XenApiException(ex.ErrorCode ?? (ex.WrongCredentials ? ErrorCodes.PoolAuthEnableFailedWrongCredentials : ErrorCodes.PoolAuthEnableFailedUnavailable),
                me, ex.Message);
        }

        kept = settings.Configuration.ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        var tx = new PoolTransaction();
        if (settings.BindPassword is { } password)
        {
            tx.PutKey(BindPasswordKey, password);
        }
        else
        {
            tx.DeleteKey(BindPasswordKey);
        }

        foreach (var host in hosts)
        {
            var updated = host.Clone();
            updated.Set(XenApi.Host.ExternalAuthType, directory.AuthType);
            updated.Set(XenApi.Host.ExternalAuthServiceName, serviceName);
            updated.Set(XenApi.Host.ExternalAuthConfiguration, kept);
            tx.Update(updated);
        }

        await database.CommitAsync(tx, cancellationToken);
        logger.LogInformation(Enabled, "External authentication on: {Type} directory {Service}", directory.AuthType, serviceName);
    }

    /// <summary>
    /// <c>pool.disable_external_auth</c>: the directory left (<see cref="IExternalDirectory.LeaveAsync"/>), every host's record cleared and the directory account's password forgotten
    /// (the caller then ends the directory users' sessions). The subjects stay, as in xapi.
    /// </summary>
    public async Task DisableAsync(IReadOnlyDictionary<string, string> config, CancellationToken cancellationToken)
    {
        if (await CurrentAsync(cancellationToken) is { } current)
        {
            try
            {
                // Active Directory: the pool's computer account removed when config names an account that may.
                await current.Directory.LeaveAsync(current.Settings, config, cancellationToken);
            }
            catch (DirectoryUnavailableException ex)
            {
                throw new XenApiException(ex.ErrorCode ?? (ex.WrongCredentials ? ErrorCodes.PoolAuthDisableFailedWrongCredentials : ErrorCodes.PoolAuthDisableFailed),
                    options.Value.HostRef, ex.Message);
            }
        }

        var hosts = await database.GetAllAsync(XenClasses.Host, cancellationToken);
        var tx = new PoolTransaction();
        tx.DeleteKey(BindPasswordKey);
        foreach (var host in hosts.Where(h => h.Get(XenApi.Host.ExternalAuthType).Length > 0))
        {
            var updated = host.Clone();
            updated.Set(XenApi.Host.ExternalAuthType, "");
            updated.Set(XenApi.Host.ExternalAuthServiceName, "");
            updated.Set(XenApi.Host.ExternalAuthConfiguration, new Dictionary<string, string>(StringComparer.Ordinal));
            tx.Update(updated);
        }

        await database.CommitAsync(tx, cancellationToken);
        logger.LogInformation(Disabled, "External authentication off");
    }
}
