using System.Text.Json;
using Microsoft.Extensions.Options;

namespace Corral.Api.Sessions;

/// <summary>
/// This host's copy of the pool's root password hash and pool secret, on local disk: what lets an operator log in
/// on a host (<c>session.slave_local_login_with_password</c>) and a new master reach a host
/// (<c>session.slave_login</c>) when the pool database is out of reach — the emergency commands' case.
/// </summary>
public sealed class LocalCredentials(IOptions<ApiOptions> options)
{
    private readonly Lock _lock = new();
    private Snapshot _current = Load(options.Value);

    public string? RootPasswordHash => _current.RootPasswordHash;

    public string? PoolSecret => _current.PoolSecret;

    /// <summary>The pool secret before the current one, while a rotation (<c>pool.rotate_secret</c>) is under way.</summary>
    public string? PreviousPoolSecret => _current.PreviousPoolSecret;

    public void Remember(string? rootPasswordHash, string? poolSecret) =>
        Save(_ => new Snapshot(rootPasswordHash ?? _current.RootPasswordHash, poolSecret ?? _current.PoolSecret, _current.PreviousPoolSecret));

    /// <summary>The pool's secrets as its database holds them: the current one, and the previous one during a rotation.</summary>
    public void RememberPoolSecrets(string current, string? previous) =>
        Save(old => old with { PoolSecret = current, PreviousPoolSecret = previous });

    private void Save(Func<Snapshot, Snapshot> change)
    {
        lock (_lock)
        {
            var next = change(_current);
            if (next == _current)
            {
                return;
            }

            _current = next;
            if (Path(options.Value) is { } path)
            {
                var temporary = path + ".tmp";
                File.WriteAllText(temporary, JsonSerializer.Serialize(next));
                if (!OperatingSystem.IsWindows())
                {
                    File.SetUnixFileMode(temporary, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                }
                File.Move(temporary, path, overwrite: true);
            }
        }
    }

    private static string? Path(ApiOptions options) =>
        string.IsNullOrEmpty(options.StateDirectory) ? null : System.IO.Path.Combine(options.StateDirectory, "credentials.json");

    private static Snapshot Load(ApiOptions options) =>
        Path(options) is { } path && File.Exists(path) ? JsonSerializer.Deserialize<Snapshot>(File.ReadAllText(path)) ?? new Snapshot(null, null, null)
        : new Snapshot(null, null, null);

    private sealed record Snapshot(string? RootPasswordHash, string? PoolSecret, string? PreviousPoolSecret);
}
