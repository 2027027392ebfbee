using System.Collections.Concurrent;
using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Corral.Api.Sessions;

/// <summary>
/// Sessions are pool objects in the database, so a session made on one host is valid on every host (and survives a
/// master change). A small cache keeps the per-call check off etcd.
/// </summary>
public sealed partial class SessionService(IPoolDatabase database, IOptions<ApiOptions> options, Pool.MasterState master, LocalCredentials local,
    LoginThrottle throttle, VerifiedPasswords verified, Auth.ExternalAuth external, ILogger<SessionService> logger)
{
    public const string RootUser = "root";
    public const string PoolSecretKey = PoolKeys.Auth + "pool-secret";
    private static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(30);
    private static readonly SemaphoreSlim Hashing = new(Math.Max(1, Environment.ProcessorCount / 2));
    private static readonly EventId SubjectLoggedOut = new(1302, "SubjectLoggedOut");
    private static readonly EventId PasswordHashUpgraded = new(1305, "PasswordHashUpgraded");
    private static readonly EventId SessionsExpired = new(1303, "SessionsExpired");
    private static readonly EventId SessionsEndedByPasswordChange = new(1304, "SessionsEndedByPasswordChange");
    private static readonly TimeSpan TouchEvery = TimeSpan.FromMinutes(1);
    private readonly ConcurrentDictionary<string, (DateTime CheckedUtc, DateTime TouchedUtc, SessionAccess Access)> _valid = new(StringComparer.Ordinal);

    // Sessions good on this host only, made without the pool database (emergency logins, host-to-host calls).
    private readonly LocalSessionTable _localSessions = new();

    public static string PasswordKey(string user) => PoolKeys.Auth + "users/" + user;

    /// <summary>Sets a user's password (the pool's root password at pool creation).</summary>
    public async Task SetPasswordAsync(string user, string password, CancellationToken cancellationToken)
    {
        var hash = PasswordHasher.Hash(password, options.Value.PasswordHashIterations);
        await database.Leases.PutDurableAsync(PasswordKey(user), hash, cancellationToken);
        verified.Forget(user);
        if (user == RootUser)
        {
            local.Remember(hash, null);
        }
    }

    /// <summary>
    /// Makes sure the pool has a secret for host-to-host calls and keeps this host's copy of it and of the root
    /// password hash current (called when the host registers).
    /// </summary>
    public async Task RefreshLocalCredentialsAsync(CancellationToken cancellationToken)
    {
        var secret = await database.Leases.GetValueAsync(PoolSecretKey, cancellationToken);
        if (secret is null)
        {
            secret = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
            await database.Leases.PutDurableAsync(PoolSecretKey, secret, cancellationToken);
            secret = await database.Leases.GetValueAsync(PoolSecretKey, cancellationToken);
        }

        local.Remember(await database.Leases.GetValueAsync(PasswordKey(RootUser), cancellationToken), null);
        local.RememberPoolSecrets(secret!, await database.Leases.GetValueAsync(PoolSecretRotation.PreviousKey, cancellationToken));
    }

    /// <summary>The pool secret as this host knows it (its local copy; the database when there is none).</summary>
    public async Task<string> GetPoolSecretAsync(CancellationToken cancellationToken) =>
        local.PoolSecret ?? await database.Leases.GetValueAsync(PoolSecretKey, cancellationToken)
        ?? throw new XenApiException(ErrorCodes.InternalError, "the pool has no secret yet");

    /// <summary>
    /// <c>session.slave_local_login_with_password</c>: checked against this host's copy of the root password, so it
    /// works while the pool database is out of reach; the session is good on this host only.
    /// </summary>
    public string LocalLogin(string user, string password, string source)
    {
        throttle.ThrowIfThrottled(user, source);
        if (user != RootUser || local.RootPasswordHash is not { } stored
            || !(verified.Matches(user, password, stored) || PasswordHasher.Verify(password, stored)))
        {
            throttle.Failed(user, source, "session.slave_local_login_with_password");
            throw new XenApiException(ErrorCodes.SessionAuthenticationFailed, user, "Authentication failure");
        }

        throttle.Succeeded(user, source);
        return _localSessions.Add(user, pool: false, DateTime.UtcNow);
    }

    /// <summary><c>session.slave_login</c>: another host of the pool, proving it with the pool secret.</summary>
    public async Task<string> SlaveLoginAsync(string secret, string source, CancellationToken cancellationToken)
    {
        throttle.ThrowIfThrottled(null, source);
        // During a rotation (pool.rotate_secret) the previous secret is accepted too: a host that has not read the new
        // one yet still gets in. The database is asked when this host's copy does not match (its copy may be older).
        var matched = Matches(secret, local.PoolSecret, local.PreviousPoolSecret);
        if (!matched)
        {
            try
            {
                matched = Matches(secret, await database.Leases.GetValueAsync(PoolSecretKey, cancellationToken),
                    await database.Leases.GetValueAsync(PoolSecretRotation.PreviousKey, cancellationToken));
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                logger.LogWarning(ex, "The pool secret does not match this host's copy and the pool database is out of reach");
            }
        }

        if (!matched)
        {
            throttle.Failed(null, source, "session.slave_login");
            throw new XenApiException(ErrorCodes.SessionAuthenticationFailed, "", "Authentication failure");
        }

        return _localSessions.Add(RootUser, pool: true, DateTime.UtcNow);
    }

    private static bool Matches(string presented, params string?[] known) =>
        known.Any(k => k is not null && System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(
            System.Text.Encoding.UTF8.GetBytes(k), System.Text.Encoding.UTF8.GetBytes(presented)));

    public bool IsLocalSession(string sessionRef) => _localSessions.Contains(sessionRef);

    public async Task<bool> HasPasswordAsync(string user, CancellationToken cancellationToken) =>
        await database.Leases.GetValueAsync(PasswordKey(user), cancellationToken) is not null;

    /// <summary>
    /// Whether <paramref name="password"/> is the pool user's (checked against the pool database, on any host), for a
    /// password presented on <paramref name="path"/> from <paramref name="source"/>: throttled as logins are
    /// (<see cref="LoginThrottle"/>), which refuses with <c>SESSION_AUTHENTICATION_FAILED</c>.
    /// </summary>
    public async Task<bool> PasswordMatchesAsync(string user, string password, string source, string path, CancellationToken cancellationToken)
    {
        throttle.ThrowIfThrottled(user, source);
        if (await VerifiedPasswordHashAsync(user, password, cancellationToken) is null)
        {
            throttle.Failed(user, source, path);
            return false;
        }

        throttle.Succeeded(user, source);
        return true;
    }

    /// <summary>
    /// The user's stored password hash when <paramref name="password"/> matches it, else null. The hash is slow on purpose
    /// (tens of milliseconds of a core); at most half the host's cores compute it at once, whoever asks, so a flood of
    /// logins cannot take the cores the host's HA and VMs need (the other logins wait their turn).
    /// </summary>
    private async Task<string?> VerifiedPasswordHashAsync(string user, string password, CancellationToken cancellationToken)
    {
        var stored = await database.Leases.GetValueAsync(PasswordKey(user), cancellationToken);
        if (stored is null)
        {
            return null;
        }

        if (verified.Matches(user, password, stored))
        {
            return stored;
        }

        await Hashing.WaitAsync(cancellationToken);
        try
        {
            // Another login of the same password may have verified it while this one waited.
            if (verified.Matches(user, password, stored))
            {
                return stored;
            }

            if (!PasswordHasher.Verify(password, stored))
            {
                return null;
            }
        }
        finally
        {
            Hashing.Release();
        }

        if (PasswordHasher.NeedsRehash(stored, options.Value.PasswordHashIterations))
        {
            stored = await UpgradeHashAsync(user, password, stored, cancellationToken);
        }

        verified.Remember(user, password, stored);
        return stored;
    }

    /// <summary>A hash made weaker than today's, replaced now that the password is known to be right; the old one if that fails.</summary>
    private async Task<string> UpgradeHashAsync(string user, string password, string stored, CancellationToken cancellationToken)
    {
        var stronger = PasswordHasher.Hash(password, options.Value.PasswordHashIterations);
        try
        {
            await database.Leases.PutDurableAsync(PasswordKey(user), stronger, cancellationToken);
            logger.LogInformation(PasswordHashUpgraded, "{User}'s password hash made at {Iterations} iterations, replacing a weaker one", user,
                options.Value.PasswordHashIterations);
            return stronger;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            logger.LogWarning(ex, "{User}'s weaker password hash could not be replaced; kept until the next login", user);
            return stored;
        }
    }

    public async Task<string> LoginAsync(string user, string password, string originator, string source, CancellationToken cancellationToken)
    {
        // While this host's election state is unknown (its own lease just lost, or not yet won), pool.master decides:
        // a host must not take logins as master merely because it does not know who the master is.
        var masterRef = master.MasterRef;
        if (masterRef is null)
        {
            var pools = await database.GetAllAsync(XenClasses.Pool, cancellationToken);
            masterRef = pools.Count > 0 ? pools[0].Get(XenApi.Pool.Master) : null;
        }

        if (masterRef is not null && masterRef != OpaqueRef.Null && masterRef != options.Value.HostRef)
        {
            // As on XenServer: a slave sends clients to the master, which they then log in to.
            var masterHost = await database.TryGetAsync(XenClasses.Host, masterRef, cancellationToken);
            throw new XenApiException(ErrorCodes.HostIsSlave, masterHost?.Get(XenApi.Host.Address) ?? "");
        }

        throttle.ThrowIfThrottled(user, source);
        if (user != RootUser && await external.CurrentAsync(cancellationToken) is { } directory)
        {
            return await DirectoryLoginAsync(directory.Directory, directory.Settings, user, password, originator, source, cancellationToken);
        }

        if (await VerifiedPasswordHashAsync(user, password, cancellationToken) is not { } stored)
        {
            throttle.Failed(user, source, "session.login_with_password");
            throw new XenApiException(ErrorCodes.SessionAuthenticationFailed, user, "Authentication failure");
        }

        throttle.Succeeded(user, source);

        if (user == RootUser)
        {
            local.Remember(stored, null);
        }

        // As xapi records a local superuser's login: no subject, no SID, and no permission list (root may do anything).
        return await CreateSessionAsync(user, user == RootUser, OpaqueRef.Null, "", [], originator, cancellationToken);
    }

    private async Task<string> CreateSessionAsync(string user, bool superuser, string subjectRef, string sid, IReadOnlyList<string> permissions, string originator,
        CancellationToken cancellationToken)
    {
        var now = DateTime.UtcNow;
        var transaction = new PoolTransaction();
        var session = transaction.Create(XenClasses.SessionSchema);
        session.Set(XenApi.Session.ThisHost, options.Value.HostRef);
        session.Set(XenApi.Session.ThisUser, OpaqueRef.Null);
        session.Set(XenApi.Session.Pool, false);
        session.Set(XenApi.Session.LastActive, now);
        session.Set(XenApi.Session.ValidationTime, now);
        session.Set(XenApi.Session.IsLocalSuperuser, superuser);
        session.Set(XenApi.Session.Subject, subjectRef);
        session.Set(XenApi.Session.AuthUserSid, sid);
        session.Set(XenApi.Session.AuthUserName, user);
        session.Set(XenApi.Session.RbacPermissions, permissions);
        session.Set(XenApi.Session.Parent, OpaqueRef.Null);
        session.Set(XenApi.Session.Originator, originator);
        session.Set(XenApi.Session.ClientCertificate, false);
        await database.CommitAsync(transaction, cancellationToken);
        _valid[session.Ref] = (now, now, SessionAccess.Of(session));
        return session.Ref;
    }

    public async Task LogoutAsync(string sessionRef, CancellationToken cancellationToken)
    {
        _valid.TryRemove(sessionRef, out _);
        if (_localSessions.Remove(sessionRef))
        {
            return;
        }

        var session = await database.TryGetAsync(XenClasses.Session, sessionRef, cancellationToken);
        if (session is not null)
        {
            var transaction = new PoolTransaction();
            transaction.Delete(session);
            try
            {
                await database.CommitAsync(transaction, cancellationToken);
            }
            catch (ConcurrentUpdateException)
            {
                // Touched at the same moment; the idle sweep removes it later.
            }
        }
    }

    /// <summary><c>session.local_logout</c>: ends a session good on this host only; any other session is left as it is, as in xapi.</summary>
    public void LocalLogout(string sessionRef)
    {
        _localSessions.Remove(sessionRef);
        _valid.TryRemove(sessionRef, out _);
    }

    /// <summary>
    /// <c>session.get_all_subject_identifiers</c>: the SIDs of the users logged in through the external directory, and
    /// of the subjects (users or groups) that let them in. Local superuser sessions are not counted.
    /// </summary>
    public async Task<IReadOnlyList<string>> GetAllSubjectIdentifiersAsync(CancellationToken cancellationToken)
    {
        var identifiers = new List<string>();
        foreach (var session in await ExternalSessionsAsync(cancellationToken))
        {
            identifiers.Add(session.Get(XenApi.Session.AuthUserSid));
            identifiers.Add(await SubjectIdentifierAsync(session, cancellationToken));
        }

        return identifiers.Where(i => i.Length > 0).Distinct(StringComparer.Ordinal).ToList();
    }

    /// <summary>
    /// <c>session.logout_subject_identifier</c>: ends every session of that user (or of users let in by that group),
    /// never a local superuser's and never the caller's own.
    /// </summary>
    public async Task LogoutSubjectIdentifierAsync(string subjectIdentifier, string callerSession, CancellationToken cancellationToken)
    {
        foreach (var session in await ExternalSessionsAsync(cancellationToken))
        {
            if (session.Ref != callerSession && (session.Get(XenApi.Session.AuthUserSid) == subjectIdentifier
                || await SubjectIdentifierAsync(session, cancellationToken) == subjectIdentifier))
            {
                logger.LogInformation(SubjectLoggedOut, "Session of {User} ended: its subject {Subject} was logged out",
                    session.Get(XenApi.Session.AuthUserName), subjectIdentifier);
                await LogoutAsync(session.Ref, cancellationToken);
            }
        }
    }

    private async Task<IEnumerable<XenObject>> ExternalSessionsAsync(CancellationToken cancellationToken) =>
        (await database.GetAllAsync(XenClasses.Session, cancellationToken)).Where(s => !s.Get(XenApi.Session.IsLocalSuperuser));

    /// <summary>The sessions of users the external directory let in (xapi leaves client-certificate sessions out), as revalidation and disabling see them.</summary>
    public async Task<List<XenObject>> DirectorySessionsAsync(CancellationToken cancellationToken) =>
        (await ExternalSessionsAsync(cancellationToken))
            .Where(s => !s.Get(XenApi.Session.ClientCertificate) && s.Get(XenApi.Session.AuthUserSid).Length > 0)
            .ToList();

    /// <summary>
    /// The pool's subjects that let a directory user in: its own, and those of the groups it is in (nested included),
    /// the user's own first, as xapi intersects a login's group membership closure with the subjects.
    /// </summary>
    public static List<XenObject> SubjectsLettingIn(IEnumerable<XenObject> subjects, string identifier, IEnumerable<string> groups)
    {
        var identities = new HashSet<string>(groups.Prepend(identifier), StringComparer.OrdinalIgnoreCase);
        return subjects.Where(s => identities.Contains(s.Get(XenApi.Subject.SubjectIdentifier)))
            .OrderBy(s => s.Get(XenApi.Subject.SubjectIdentifier).Equals(identifier, StringComparison.OrdinalIgnoreCase) ? 0 : 1)
            .ToList();
    }

    /// <summary>The identifier of the subject a session logged in through, or "" when that subject is gone.</summary>
    private async Task<string> SubjectIdentifierAsync(XenObject session, CancellationToken cancellationToken) =>
        OpaqueRef.IsWellFormed(session.Get(XenApi.Session.Subject))
        && await database.TryGetAsync(XenApi.Subject.ClassName, session.Get(XenApi.Session.Subject), cancellationToken) is { } subject
            ? subject.Get(XenApi.Subject.SubjectIdentifier)
            : "";

    /// <summary>Checks that the session is valid (and keeps it alive); what it may call.</summary>
    /// <exception cref="XenApiException">SESSION_INVALID.</exception>
    public async Task<SessionAccess> ValidateAsync(string sessionRef, CancellationToken cancellationToken)
    {
        var now = DateTime.UtcNow;
        if (_localSessions.Contains(sessionRef))
        {
            if (!_localSessions.Touch(sessionRef, now, options.Value.SessionIdleTimeout))
            {
                throw new XenApiException(ErrorCodes.SessionInvalid, sessionRef);
            }

            return SessionAccess.Local;
        }

        if (_valid.TryGetValue(sessionRef, out var seen) && now - seen.CheckedUtc < CacheFor)
        {
            return seen.Access;
        }

        XenObject? session = null;
        if (OpaqueRef.IsWellFormed(sessionRef))
        {
            session = await database.TryGetAsync(XenClasses.Session, sessionRef, cancellationToken);
        }

        if (session is null || now - session.Get(XenApi.Session.LastActive) > options.Value.SessionIdleTimeout)
        {
            _valid.TryRemove(sessionRef, out _);
            throw new XenApiException(ErrorCodes.SessionInvalid, sessionRef);
        }

        var touched = seen.TouchedUtc;
        if (now - session.Get(XenApi.Session.LastActive) > TouchEvery)
        {
            try
            {
                await database.UpdateAsync([(XenClasses.Session, sessionRef)], (objs, tx) =>
                {
                    var s = objs[0].Clone();
                    s.Set(XenApi.Session.LastActive, now);
                    tx.Update(s);
                }, cancellationToken);
                touched = now;
            }
            catch (XenApiException)
            {
                throw new XenApiException(ErrorCodes.SessionInvalid, sessionRef);
            }
        }

        var access = SessionAccess.Of(session);
        _valid[sessionRef] = (now, touched, access);
        return access;
    }

    public async Task<string> GetUserAsync(string sessionRef, CancellationToken cancellationToken)
    {
        if (_localSessions.UserOf(sessionRef) is { } user)
        {
            return user;
        }

        var session = await database.GetAsync(XenClasses.Session, sessionRef, cancellationToken);
        return session.Get(XenApi.Session.AuthUserName);
    }
}
