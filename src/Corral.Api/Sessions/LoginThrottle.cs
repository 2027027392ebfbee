using System.Collections.Concurrent;
using Corral.Model;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Corral.Api.Sessions;

/// <summary>
/// Throttles password guessing on every path that checks a password (<c>session.login_with_password</c>,
/// <c>session.slave_local_login_with_password</c>, <c>session.slave_login</c>'s pool secret, <c>change_password</c>'s
/// old password, and HTTP Basic on <c>rrd_updates</c>): each failure fills a bucket for its user and one for its source
/// address, and each bucket leaks one failure every <see cref="ApiOptions.LoginFailureForgivenAfter"/>. While either is
/// full, attempts are refused without checking the password, so guessing gets no faster by trying harder. So that
/// someone guessing a user's password cannot lock its owner out, an address this user has logged in from before is
/// held to its own address's bucket only. The pool secret (<c>slave_login</c>) is throttled by address only: a wrong
/// secret from elsewhere must never stop the pool's own hosts. Kept in this host's memory: logins go to the master, and
/// a new master starts afresh.
/// </summary>
public sealed class LoginThrottle(IOptions<ApiOptions> options, TimeProvider clock, ILogger<LoginThrottle> logger)
{
    private static readonly EventId LoginFailed = new(1310, "LoginFailed");
    private static readonly EventId LoginThrottled = new(1311, "LoginThrottled");

    // Buckets by key ("user:<name>", "source:<address>"): failures not yet forgiven, as of a monotonic timestamp.
    private readonly ConcurrentDictionary<string, Bucket> _buckets = new(StringComparer.Ordinal);

    /// <summary>At most about this many buckets are kept: past it, emptied ones are dropped.</summary>
    public const int MaxBuckets = 10_000;

    /// <summary>How many buckets are kept now.</summary>
    public int Count => _buckets.Count;

    // (user, address) pairs that have logged in: exempt from the user's bucket (not from their address's).
    private readonly ConcurrentDictionary<string, byte> _known = new(StringComparer.Ordinal);

    private sealed class Bucket
    {
        public double Level;
        public long Updated;
        public bool Reported;
    }

    /// <summary>Refuses the attempt (<c>SESSION_AUTHENTICATION_FAILED</c>, saying when to try again) while its user or source is throttled.</summary>
    public void ThrowIfThrottled(string? user, string source)
    {
        var wait = user is null || _known.ContainsKey(KnownKey(user, source)) ? TimeSpan.Zero : WaitFor(UserKey(user), options.Value.LoginFailuresPerUser);
        var bySource = WaitFor(SourceKey(source), options.Value.LoginFailuresPerSource);
        if (bySource > wait)
        {
            wait = bySource;
        }

        if (wait > TimeSpan.Zero)
        {
            throw new XenApiException(ErrorCodes.SessionAuthenticationFailed, user ?? "",
                $"Too many failed logins for this user or from this address; try again in {Math.Ceiling(wait.TotalSeconds)} s");
        }
    }

    /// <summary>
    /// Records a failed attempt on <paramref name="path"/> and logs it with its source; <paramref name="user"/> null for
    /// the pool secret, which only its address's bucket counts.
    /// </summary>
    public void Failed(string? user, string source, string path)
    {
        logger.LogWarning(LoginFailed, "Failed login for {User} from {Source} ({Path})", user ?? "(pool secret)", source.Length == 0 ? "this host" : source, path);
        if (user is not null)
        {
            Fill(UserKey(user), options.Value.LoginFailuresPerUser, user, source);
        }

        Fill(SourceKey(source), options.Value.LoginFailuresPerSource, user ?? "(pool secret)", source);
    }

    /// <summary>Records a login that succeeded: this address may go on logging in as this user while others guess at it.</summary>
    public void Succeeded(string user, string source)
    {
        if (_known.Count >= MaxBuckets)
        {
            _known.Clear();
        }

        _known.TryAdd(KnownKey(user, source), 0);
    }

    private static string KnownKey(string user, string source) => user + "\n" + source;

    private static string UserKey(string user) => "user:" + user;

    private static string SourceKey(string source) => "source:" + source;

    private TimeSpan WaitFor(string key, int capacity)
    {
        if (!_buckets.TryGetValue(key, out var bucket))
        {
            return TimeSpan.Zero;
        }

        lock (bucket)
        {
            var level = Leak(bucket);
            var over = level - (capacity - 1);
            return over > 0 ? options.Value.LoginFailureForgivenAfter * over : TimeSpan.Zero;
        }
    }

    private void Fill(string key, int capacity, string user, string source)
    {
        if (!_buckets.TryGetValue(key, out var bucket))
        {
            if (_buckets.Count >= MaxBuckets && Prune() >= MaxBuckets)
            {
                // Every bucket is still counting: this key goes uncounted (its address's or user's bucket may still
                // hold it) rather than memory growing without bound.
                logger.LogWarning(LoginThrottled, "Login throttling tracks {Count} users and addresses already; {Key} is not counted", MaxBuckets, key);
                return;
            }

            bucket = _buckets.GetOrAdd(key, _ => new Bucket { Updated = clock.GetTimestamp() });
        }

        lock (bucket)
        {
            // Never past full: failures checked beyond it (an address exempt from the user's bucket) must not stretch
            // how long everyone else waits once they stop.
            var level = Math.Min(capacity, Leak(bucket) + 1);
            bucket.Level = level;
            if (level >= capacity && !bucket.Reported)
            {
                bucket.Reported = true;
                logger.LogWarning(LoginThrottled, "Logins throttled for {Key} after {Failures} failures (last: {User} from {Source})", key, capacity, user, source);
            }
            else if (level < capacity)
            {
                bucket.Reported = false;
            }
        }
    }

    // Forgives what the time since the bucket's last update earns, and returns the level left.
    private double Leak(Bucket bucket)
    {
        var now = clock.GetTimestamp();
        var forgiven = clock.GetElapsedTime(bucket.Updated, now) / options.Value.LoginFailureForgivenAfter;
        bucket.Level = Math.Max(0, bucket.Level - forgiven);
        bucket.Updated = now;
        return bucket.Level;
    }

    private int Prune()
    {
        foreach (var (key, bucket) in _buckets)
        {
            lock (bucket)
            {
                if (Leak(bucket) <= 0)
                {
                    _buckets.TryRemove(key, out _);
                }
            }
        }

        return _buckets.Count;
    }
}
