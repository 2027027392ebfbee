using System.Collections.Concurrent;
using Corral.Model;

namespace Corral.Api.Sessions;

/// <summary>
/// The sessions good on this host only, made without the pool database: emergency logins
/// (<c>session.slave_local_login_with_password</c>) and host-to-host calls (<c>session.slave_login</c>). In memory, so
/// bounded as the pool's sessions are: idle ones end, and past the limits the least recently used
/// (<see cref="Collect"/>, by the same rules as <see cref="SessionRetention"/>).
/// </summary>
public sealed class LocalSessionTable
{
    private readonly ConcurrentDictionary<string, Entry> _sessions = new(StringComparer.Ordinal);

    private sealed record Entry(string User, bool Pool, DateTime LastUsedUtc);

    public int Count => _sessions.Count;

    public string Add(string user, bool pool, DateTime nowUtc)
    {
        var reference = OpaqueRef.New();
        _sessions[reference] = new Entry(user, pool, nowUtc);
        return reference;
    }

    public bool Contains(string sessionRef) => _sessions.ContainsKey(sessionRef);

    public string? UserOf(string sessionRef) => _sessions.TryGetValue(sessionRef, out var entry) ? entry.User : null;

    public bool Remove(string sessionRef) => _sessions.TryRemove(sessionRef, out _);

    /// <summary>Records a use; a session idle longer than <paramref name="idleTimeout"/> ends instead (false).</summary>
    public bool Touch(string sessionRef, DateTime nowUtc, TimeSpan idleTimeout)
    {
        if (!_sessions.TryGetValue(sessionRef, out var entry))
        {
            return false;
        }

        if (nowUtc - entry.LastUsedUtc > idleTimeout)
        {
            _sessions.TryRemove(sessionRef, out _);
            return false;
        }

        _sessions.TryUpdate(sessionRef, entry with { LastUsedUtc = nowUtc }, entry);
        return true;
    }

    /// <summary>Ends the sessions <see cref="SessionRetention"/> picks; returns them.</summary>
    public IReadOnlyList<ExpiredSession> Collect(DateTime nowUtc, SessionLimits limits)
    {
        var facts = _sessions.Select(p => new SessionFacts(p.Key, "", p.Value.LastUsedUtc, p.Value.Pool, p.Value.User, "")).ToList();
        var expired = SessionRetention.Select(facts, nowUtc, limits);
        foreach (var session in expired)
        {
            _sessions.TryRemove(session.Ref, out _);
        }

        return expired;
    }

    /// <summary>Ends <paramref name="user"/>'s password sessions here but <paramref name="keep"/>; host-to-host ones stay.</summary>
    public IReadOnlyList<string> EndPasswordSessionsOf(string user, string keep)
    {
        var ended = _sessions.Where(p => !p.Value.Pool && p.Value.User == user && p.Key != keep).Select(p => p.Key).ToList();
        foreach (var reference in ended)
        {
            _sessions.TryRemove(reference, out _);
        }

        return ended;
    }
}
