namespace Corral.Cli.Api;

/// <summary>
/// The addresses of the pool's hosts, as last seen through a server xe was pointed at (<c>-s</c> or <c>~/.xe</c>), kept
/// in the user's cache directory. When that server stops answering (the pool master lost power), xe tries these
/// instead, as XenCenter reconnects to a pool's new master: any member names the master (<c>HOST_IS_SLAVE</c>). Without
/// a home directory nothing is kept.
/// </summary>
public sealed class PoolMembersCache(string? directory)
{
    /// <summary>The cache of the user whose environment this is: <c>$XDG_CACHE_HOME/corral/xe-pools</c> or <c>~/.cache/…</c>.</summary>
    public static PoolMembersCache ForUser(Func<string, string?> environment)
    {
        var cache = environment("XDG_CACHE_HOME");
        if (string.IsNullOrEmpty(cache))
        {
            var home = environment("HOME");
            cache = string.IsNullOrEmpty(home) || !Directory.Exists(home) ? null : Path.Combine(home, ".cache");
        }

        return new PoolMembersCache(cache is null ? null : Path.Combine(cache, "corral", "xe-pools"));
    }

    /// <summary>False without a cache directory (no home): nothing is read or kept.</summary>
    public bool IsKept => directory is not null;

    public IReadOnlyList<string> Read(string server, int port)
    {
        try
        {
            return PathOf(server, port) is { } path && File.Exists(path)
                ? File.ReadAllLines(path).Select(l => l.Trim()).Where(l => l.Length > 0).ToList()
                : [];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    public void Write(string server, int port, IEnumerable<string> addresses)
    {
        if (PathOf(server, port) is not { } path)
        {
            return;
        }

        var lines = addresses.ToList();
        if (Read(server, port).SequenceEqual(lines, StringComparer.Ordinal))
        {
            return;
        }

        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            var temporary = path + ".tmp";
            File.WriteAllLines(temporary, lines);
            File.Move(temporary, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Only a convenience: xe works without it.
        }
    }

    private string? PathOf(string server, int port)
    {
        if (directory is null)
        {
            return null;
        }

        var name = string.Concat($"{server}_{port}".Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_' ? c : '_'));
        return Path.Combine(directory, name);
    }
}
