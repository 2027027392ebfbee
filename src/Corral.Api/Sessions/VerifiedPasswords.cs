using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;

namespace Corral.Api.Sessions;

/// <summary>
/// The passwords this host verified lately, so that a user who logs in again (xe logs in for every command) does not
/// pay the slow hash each time: per user, a keyed MAC of the password (the key random, per process, never stored) and
/// the stored hash it was checked against, for <see cref="For"/>. A changed password (a different stored hash, on any
/// host) misses at once; a wrong password always takes the full hash. What the cache holds tells nothing without the
/// key, and dies with the process.
/// </summary>
public sealed class VerifiedPasswords(TimeProvider time)
{
    /// <summary>How long a verified password is taken without hashing again.</summary>
    public static readonly TimeSpan For = TimeSpan.FromMinutes(10);

    private const int MaxUsers = 10_000;
    private readonly byte[] _key = RandomNumberGenerator.GetBytes(32);
    private readonly ConcurrentDictionary<string, Entry> _entries = new(StringComparer.Ordinal);

    private sealed record Entry(byte[] Mac, string StoredHash, long VerifiedAt);

    public bool Matches(string user, string password, string storedHash) =>
        _entries.TryGetValue(user, out var entry)
        && entry.StoredHash == storedHash
        && time.GetElapsedTime(entry.VerifiedAt) < For
        && CryptographicOperations.FixedTimeEquals(entry.Mac, Mac(user, password));

    public void Remember(string user, string password, string storedHash)
    {
        if (_entries.Count >= MaxUsers && !_entries.ContainsKey(user))
        {
            _entries.Clear();
        }

        _entries[user] = new Entry(Mac(user, password), storedHash, time.GetTimestamp());
    }

    public void Forget(string user) => _entries.TryRemove(user, out _);

    private byte[] Mac(string user, string password) => HMACSHA256.HashData(_key, Encoding.UTF8.GetBytes(user + "\0" + password));
}
