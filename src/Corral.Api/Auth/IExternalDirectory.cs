namespace Corral.Api.Auth;

/// <summary>
/// The pool's external directory as its hosts' <c>external_auth_*</c> fields configure it: the type (<c>LDAP</c>), the
/// service name (the directory's URI) and the configuration, plus the password of the account that searches it, which
/// is kept out of the hosts' records.
/// </summary>
public sealed record DirectorySettings(string AuthType, string ServiceName, IReadOnlyDictionary<string, string> Configuration, string? BindPassword);

/// <summary>A user the directory authenticated: its subject identifier, its name, and the identifiers of every group it is in (nested included).</summary>
public sealed record DirectoryUser(string Identifier, string Name, IReadOnlyList<string> Groups);

/// <summary>The directory could not be asked (unreachable, refused the configured account, or misconfigured).</summary>
public sealed class DirectoryUnavailableException(string message, bool wrongCredentials = false, Exception? inner = null, string? errorCode = null)
    : Exception(message, inner)
{
    /// <summary>The directory refused the account configured to search it.</summary>
    public bool WrongCredentials { get; } = wrongCredentials;

    /// <summary>xapi's error code for what went wrong, when one says it better than the caller's (joining a domain: an OU that does not exist...).</summary>
    public string? ErrorCode { get; } = errorCode;
}

/// <summary>What joining a directory needs to know of the pool: its uuid (a computer account's default name is made from it).</summary>
public sealed record DirectoryJoin(string PoolUuid);

/// <summary>
/// An external directory users log in through (xapi's auth plugin: its AD one, here LDAP), and which
/// <c>auth.*</c>, <c>subject-add</c> and logins ask. Identifiers are the directory's own (an LDAP entry's DN).
/// </summary>
public interface IExternalDirectory
{
    /// <summary>The <c>auth_type</c> this directory serves.</summary>
    string AuthType { get; }

    /// <summary>What is wrong with the settings before any connection is tried; empty when they are usable.</summary>
    IReadOnlyList<string> Problems(DirectorySettings settings);

    /// <summary>Connects and binds with the configured account (or anonymously), as <c>pool.enable_external_auth</c> checks it.</summary>
    /// <exception cref="DirectoryUnavailableException">It could not.</exception>
    Task CheckAsync(DirectorySettings settings, CancellationToken cancellationToken);

    /// <summary>
    /// <c>pool.enable_external_auth</c>'s work in the directory: checks it can be asked and, for a directory that has
    /// members (Active Directory), joins it; returns the settings to keep (a joined computer account's name and
    /// password in place of the administrator's).
    /// </summary>
    /// <exception cref="DirectoryUnavailableException">It could not.</exception>
    async Task<DirectorySettings> JoinAsync(DirectorySettings settings, DirectoryJoin join, CancellationToken cancellationToken)
    {
        await CheckAsync(settings, cancellationToken);
        return settings;
    }

    /// <summary>
    /// <c>pool.disable_external_auth</c>'s work in the directory, before the pool forgets it: an Active Directory
    /// computer account is removed when <paramref name="config"/> gives an account (<c>user</c>, <c>pass</c>) that may.
    /// </summary>
    /// <exception cref="DirectoryUnavailableException">It could not.</exception>
    Task LeaveAsync(DirectorySettings settings, IReadOnlyDictionary<string, string> config, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>The user named <paramref name="name"/> if the password is its own; null for an unknown name or a wrong password.</summary>
    /// <exception cref="DirectoryUnavailableException">The directory could not be asked.</exception>
    Task<DirectoryUser?> AuthenticateAsync(DirectorySettings settings, string name, string password, CancellationToken cancellationToken);

    /// <summary>The identifier of the user or group named <paramref name="name"/>; null when there is none.</summary>
    Task<string?> FindAsync(DirectorySettings settings, string name, CancellationToken cancellationToken);

    /// <summary>xapi's subject information (<c>subject-name</c>, <c>subject-displayname</c>, <c>subject-is-group</c>, ...); null when unknown.</summary>
    Task<IReadOnlyDictionary<string, string>?> InformationAsync(DirectorySettings settings, string identifier, CancellationToken cancellationToken);

    /// <summary>The identifiers of every group the subject is in, nested included; null when the subject is unknown.</summary>
    Task<IReadOnlyList<string>?> GroupsAsync(DirectorySettings settings, string identifier, CancellationToken cancellationToken);
}
