using System.Collections.Concurrent;
using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Corral.Api.Sessions;

public sealed class ApiOptions
{
    /// <summary>This host's reference (sessions record where they were made).</summary>
    public string HostRef { get; set; } = OpaqueRef.Null;

    /// <summary>A session unused this long is closed, as xapi closes idle sessions.</summary>
    public TimeSpan SessionIdleTimeout { get; set; } = TimeSpan.FromHours(24);

    /// <summary>How long a sync call waits for its task before giving up on waiting (the task itself goes on).</summary>
    public TimeSpan OperationTimeout { get; set; } = TimeSpan.FromMinutes(10);
}

/// <summary>
/// Sessions are pool objects in the database, so a session made on one host is valid on every host (and survives a
/// master change). A small cache keeps the per-call check off etcd.
/// </summary>
public sealed class SessionService(IPoolDatabase database, IOptions<ApiOptions> options, Pool.MasterState master, ILogger<SessionService> logger)
{
    public const string RootUser = "root";
    private static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan TouchEvery = TimeSpan.FromMinutes(1);
    private readonly ConcurrentDictionary<string, (DateTime CheckedUtc, DateTime TouchedUtc)> _valid = new(StringComparer.Ordinal);

    public static string PasswordKey(string user) => PoolKeys.Auth + "users/" + user;

    /// <summary>Sets a user's password (the pool's root password at pool creation).</summary>
    public Task SetPasswordAsync(string user, string password, CancellationToken cancellationToken) =>
        database.Leases.PutDurableAsync(PasswordKey(user), PasswordHasher.Hash(password), cancellationToken);

    public async Task<bool> HasPasswordAsync(string user, CancellationToken cancellationToken) =>
        await database.Leases.GetValueAsync(PasswordKey(user), cancellationToken).ConfigureAwait(false) is not null;

    public async Task<string> LoginAsync(string user, string password, string originator, CancellationToken cancellationToken)
    {
        if (!master.ThisHostMayServe && master.MasterRef is { } masterRef)
        {
            // As on XenServer: a slave sends clients to the master, which they then log in to.
            var masterHost = await database.TryGetAsync(XenClasses.Host, masterRef, cancellationToken).ConfigureAwait(false);
            throw new XenApiException(ErrorCodes.HostIsSlave, masterHost?.GetString("address") ?? "");
        }

        var stored = await database.Leases.GetValueAsync(PasswordKey(user), cancellationToken).ConfigureAwait(false);
        if (stored is null || !PasswordHasher.Verify(password, stored))
        {
            logger.LogWarning("Failed login for {User}", user);
            throw new XenApiException(ErrorCodes.SessionAuthenticationFailed, user, "Authentication failure");
        }

        var now = DateTime.UtcNow;
        var transaction = new PoolTransaction();
        var session = transaction.Create(XenClasses.SessionSchema, new Dictionary<string, object?>
        {
            ["this_host"] = options.Value.HostRef,
            ["last_active"] = now,
            ["validation_time"] = now,
            ["is_local_superuser"] = user == RootUser,
            ["auth_user_name"] = user,
            ["originator"] = originator,
        });
        await database.CommitAsync(transaction, cancellationToken).ConfigureAwait(false);
        _valid[session.Ref] = (now, now);
        return session.Ref;
    }

    public async Task LogoutAsync(string sessionRef, CancellationToken cancellationToken)
    {
        _valid.TryRemove(sessionRef, out _);
        var session = await database.TryGetAsync(XenClasses.Session, sessionRef, cancellationToken).ConfigureAwait(false);
        if (session is not null)
        {
            var transaction = new PoolTransaction();
            transaction.Delete(session);
            try
            {
                await database.CommitAsync(transaction, cancellationToken).ConfigureAwait(false);
            }
            catch (ConcurrentUpdateException)
            {
                // Touched at the same moment; the idle sweep removes it later.
            }
        }
    }

    /// <exception cref="XenApiException">SESSION_INVALID.</exception>
    public async Task ValidateAsync(string sessionRef, CancellationToken cancellationToken)
    {
        var now = DateTime.UtcNow;
        if (_valid.TryGetValue(sessionRef, out var seen) && now - seen.CheckedUtc < CacheFor)
        {
            return;
        }

        XenObject? session = null;
        if (OpaqueRef.IsWellFormed(sessionRef))
        {
            session = await database.TryGetAsync(XenClasses.Session, sessionRef, cancellationToken).ConfigureAwait(false);
        }

        if (session is null || now - session.GetDateTime("last_active") > options.Value.SessionIdleTimeout)
        {
            _valid.TryRemove(sessionRef, out _);
            throw new XenApiException(ErrorCodes.SessionInvalid, sessionRef);
        }

        var touched = seen.TouchedUtc;
        if (now - session.GetDateTime("last_active") > TouchEvery)
        {
            try
            {
                await database.UpdateAsync([(XenClasses.Session, sessionRef)], (objs, tx) =>
                {
                    var s = objs[0].Clone();
                    s["last_active"] = now;
                    tx.Update(s);
                }, cancellationToken).ConfigureAwait(false);
                touched = now;
            }
            catch (XenApiException)
            {
                throw new XenApiException(ErrorCodes.SessionInvalid, sessionRef);
            }
        }

        _valid[sessionRef] = (now, touched);
    }

    public async Task<string> GetUserAsync(string sessionRef, CancellationToken cancellationToken)
    {
        var session = await database.GetAsync(XenClasses.Session, sessionRef, cancellationToken).ConfigureAwait(false);
        return session.GetString("auth_user_name");
    }
}
