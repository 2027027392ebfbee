namespace Corral.Api.Sessions;

/// <summary>What the session collector needs to know of one session.</summary>
public sealed record SessionFacts(string Ref, string Uuid, DateTime LastActiveUtc, bool Pool, string UserName, string Originator);

/// <summary>A session to end, and why (for the log).</summary>
public sealed record ExpiredSession(string Ref, string Uuid, string Group, string Reason);

/// <summary>How many sessions the pool keeps, and for how long: xapi's figures (<c>xapi_globs.ml</c>).</summary>
public sealed record SessionLimits(TimeSpan IdleTimeout, int MaxSessions, int MaxPerOriginator, int MaxPerUser);

/// <summary>
/// Which sessions the pool ends, decided as xapi's database collector (<c>db_gc.ml</c>, <c>timeout_sessions</c>)
/// decides: sessions fall in groups (host-to-host sessions; root's sessions with no originator; root's per originator
/// such as "XenCenter" or "xe"; every other user's per user name). In each group a session idle longer than the timeout
/// ends, and past the group's limit the least recently active end. So a client that logs in and never logs out fills its
/// own group only: its oldest sessions go, nobody else's. Unlike xapi, a session with a pending task is not spared
/// (Corral's tasks do not record their session, whose reference is a secret): a client following its task stays active.
/// </summary>
public static class SessionRetention
{
    public static IReadOnlyList<ExpiredSession> Select(IEnumerable<SessionFacts> sessions, DateTime nowUtc, SessionLimits limits)
    {
        var groups = new Dictionary<string, (int Limit, List<SessionFacts> Members)>(StringComparer.Ordinal);
        foreach (var session in sessions)
        {
            var (group, limit) = GroupOf(session, limits);
            if (!groups.TryGetValue(group, out var entry))
            {
                entry = (limit, []);
                groups[group] = entry;
            }

            entry.Members.Add(session);
        }

        var expired = new List<ExpiredSession>();
        foreach (var (group, (limit, members)) in groups.OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var old = members.Where(s => nowUtc - s.LastActiveUtc > limits.IdleTimeout).ToList();
            expired.AddRange(old.Select(s => new ExpiredSession(s.Ref, s.Uuid, group, $"idle since {s.LastActiveUtc:u}")));
            var young = members.Except(old).OrderByDescending(s => s.LastActiveUtc).ThenBy(s => s.Ref, StringComparer.Ordinal).ToList();
            expired.AddRange(young.Skip(limit).Select(s => new ExpiredSession(s.Ref, s.Uuid, group, $"more than {limit} sessions in the group")));
        }

        return expired;
    }

    /// <summary>xapi's grouping: the pool's own sessions; root's by originator (none: "external"); anyone else's by name.</summary>
    private static (string Group, int Limit) GroupOf(SessionFacts session, SessionLimits limits)
    {
        var root = session.UserName is "" or SessionService.RootUser;
        return session switch
        {
            { Pool: true } => ("internal", limits.MaxSessions),
            _ when root && session.Originator.Length == 0 => ("external", limits.MaxSessions),
            _ when root => ("originator:" + session.Originator, limits.MaxPerOriginator),
            _ => ("username:" + session.UserName, limits.MaxPerUser),
        };
    }
}
