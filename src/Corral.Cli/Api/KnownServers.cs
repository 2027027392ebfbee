namespace Corral.Cli.Api;

/// <summary>
/// The servers whose certificates xe trusts, as XenCenter keeps its known servers and ssh its known_hosts: one line per
/// server and port, <c>&lt;server&gt; &lt;port&gt; &lt;SHA-256 fingerprint&gt;</c>, in
/// <c>$XDG_CONFIG_HOME/corral/xe-known-servers</c> (<c>~/.config/corral/xe-known-servers</c>), readable by the user
/// only. A server is added on first use, or learnt from a pool xe already trusts (its hosts' <c>Certificate</c>
/// records). Without a home directory nothing is kept.
/// </summary>
public sealed class KnownServers(string? path)
{
    public const string FileName = "xe-known-servers";

    /// <summary>The store of the user whose environment this is.</summary>
    public static KnownServers ForUser(Func<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        var config = environment("XDG_CONFIG_HOME");
        if (string.IsNullOrEmpty(config))
        {
            var home = environment("HOME");
            config = string.IsNullOrEmpty(home) || !Directory.Exists(home) ? null : System.IO.Path.Combine(home, ".config");
        }

        return new KnownServers(config is null ? null : System.IO.Path.Combine(config, "corral", FileName));
    }

    /// <summary>Where the store lives; null when nothing is kept.</summary>
    public string? Path => path;

    /// <summary>The fingerprint trusted for a server, or null if it is not known.</summary>
    public string? Find(string server, int port) => Read().GetValueOrDefault(Key(server, port));

    /// <summary>Trusts <paramref name="fingerprint"/> for the server from now on (replacing what was trusted before).</summary>
    public void Remember(string server, int port, string fingerprint) => Update([(server, port, fingerprint)]);

    /// <summary>Trusts each fingerprint for its server; the file is written only if something changed.</summary>
    public void Update(IEnumerable<(string Server, int Port, string Fingerprint)> entries)
    {
        if (path is null)
        {
            return;
        }

        var known = Read();
        var changed = false;
        foreach (var (server, port, fingerprint) in entries.Where(e => e.Server.Length > 0 && e.Fingerprint.Length > 0))
        {
            var key = Key(server, port);
            if (!string.Equals(known.GetValueOrDefault(key), fingerprint, StringComparison.OrdinalIgnoreCase))
            {
                known[key] = fingerprint.ToUpperInvariant();
                changed = true;
            }
        }

        if (changed)
        {
            Write(known);
        }
    }

    /// <summary>The line a user removes to accept a server's new certificate.</summary>
    public static string LineStart(string server, int port) => Key(server, port) + " ";

    private static string Key(string server, int port) => $"{server.Trim('[', ']').ToLowerInvariant()} {port.ToString(System.Globalization.CultureInfo.InvariantCulture)}";

    private Dictionary<string, string> Read()
    {
        var known = new Dictionary<string, string>(StringComparer.Ordinal);
        if (path is null || !File.Exists(path))
        {
            return known;
        }

        foreach (var line in File.ReadAllLines(path))
        {
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length == 3 && !parts[0].StartsWith('#'))
            {
                known[$"{parts[0]} {parts[1]}"] = parts[2];
            }
        }

        return known;
    }

    private void Write(Dictionary<string, string> known)
    {
        var directory = System.IO.Path.GetDirectoryName(path)!;
        Directory.CreateDirectory(directory);
        var temporary = path + ".tmp";
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using (var writer = new StreamWriter(new FileStream(temporary, options)))
        {
            writer.Write("# Servers whose certificates xe trusts: server port SHA-256-fingerprint. Remove a line to trust a server's new certificate.\n");
            foreach (var (key, fingerprint) in known.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                writer.Write($"{key} {fingerprint}\n");
            }
        }

        File.Move(temporary, path!, overwrite: true);
    }
}
