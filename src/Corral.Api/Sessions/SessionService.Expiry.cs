using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.Extensions.Logging;

namespace Corral.Api.Sessions;

/// <summary>How sessions end other than by logout: the collector's passes and a password change.</summary>
public sealed partial class SessionService
{
    /// <summary>This host's local sessions past their idle timeout or their group's limit end (every host, every pass).</summary>
    public int CollectLocalSessions(DateTime nowUtc, SessionLimits limits)
    {
        var expired = _localSessions.Collect(nowUtc, limits);
        foreach (var session in expired)
        {
            _valid.TryRemove(session.Ref, out _);
        }

        if (expired.Count > 0)
        {
            logger.LogInformation(SessionsExpired, "Ended {Count} of this host's local sessions ({Reasons})", expired.Count,
                string.Join("; ", expired.Select(e => $"{e.Group}: {e.Reason}").Distinct(StringComparer.Ordinal)));
        }

        return expired.Count;
    }

    /// <summary>
    /// The pool's sessions past their idle timeout or their group's limit end, as xapi's collector ends them (the
    /// master, every pass). Returns how many ended; one a client touched meanwhile is left to the next pass.
    /// </summary>
    public async Task<int> CollectPoolSessionsAsync(DateTime nowUtc, SessionLimits limits, CancellationToken cancellationToken)
    {
        var all = await database.GetAllAsync(XenClasses.Session, cancellationToken);
        var facts = all.Select(s => new SessionFacts(s.Ref, s.Uuid, s.Get(XenApi.Session.LastActive), s.Get(XenApi.Session.Pool),
            s.Get(XenApi.Session.AuthUserName), s.Get(XenApi.Session.Originator)));
        var expired = SessionRetention.Select(facts, nowUtc, limits);
        var byRef = all.ToDictionary(s => s.Ref, StringComparer.Ordinal);
        var ended = await DeleteAsync(expired.Select(e => byRef[e.Ref]), cancellationToken);
        foreach (var group in expired.GroupBy(e => e.Group, StringComparer.Ordinal))
        {
            // Uuids only: a session's reference is its secret and is never logged.
            logger.LogInformation(SessionsExpired, "Ended {Count} sessions of group {Group} ({Reason}): {Uuids}", group.Count(), group.Key,
                group.First().Reason, string.Join(", ", group.Take(5).Select(e => e.Uuid)) + (group.Count() > 5 ? ", ..." : ""));
        }

        return ended;
    }

    /// <summary>
    /// After a password change: every other session of <paramref name="user"/> ends, the pool's (every host sees that at
    /// its next check, within 30 s) and this host's local password sessions. Host-to-host sessions stay.
    /// </summary>
    public async Task<int> EndOtherSessionsOfAsync(string user, string keep, CancellationToken cancellationToken)
    {
        var local = _localSessions.EndPasswordSessionsOf(user, keep);
        var all = await database.GetAllAsync(XenClasses.Session, cancellationToken);
        var ended = await DeleteAsync(all.Where(s => s.Ref != keep && s.Get(XenApi.Session.AuthUserName) == user), cancellationToken);
        foreach (var reference in local)
        {
            _valid.TryRemove(reference, out _);
        }

        logger.LogInformation(SessionsEndedByPasswordChange, "{User}'s password changed: ended {Count} other sessions of {User}", user,
            ended + local.Count, user);
        return ended + local.Count;
    }

    /// <summary>
    /// External authentication turned off: every session of the directory's users ends (every host sees that at its next
    /// check, within 30 s); only the local superuser can log in from then on. Returns how many ended.
    /// </summary>
    public async Task<int> EndDirectorySessionsAsync(CancellationToken cancellationToken)
    {
        var ended = 0;
        for (var round = 0; round < 10; round++)
        {
            // A session touched meanwhile stays on a round; it is read again and ended on the next.
            var directorySessions = await DirectorySessionsAsync(cancellationToken);
            if (directorySessions.Count == 0)
            {
                break;
            }

            ended += await DeleteAsync(directorySessions, cancellationToken);
        }

        logger.LogInformation(DirectorySessionsEnded, "External authentication off: ended {Count} sessions of the directory's users", ended);
        return ended;
    }

    /// <summary>Deletes sessions (one touched meanwhile stays) and forgets them here. Returns how many went.</summary>
    private async Task<int> DeleteAsync(IEnumerable<XenObject> sessions, CancellationToken cancellationToken)
    {
        var deleted = await database.TryDeleteAllAsync(sessions, cancellationToken);
        foreach (var session in deleted)
        {
            _valid.TryRemove(session.Ref, out _);
        }

        return deleted.Count;
    }
}
