using System.Globalization;

namespace Corral.Cli;

/// <summary>
/// An xe command line, read in xe's two steps. First the client's own options, wherever they stand: <c>-s</c>,
/// <c>-h</c>, <c>-p</c>, <c>-u</c>, <c>-pw</c>, <c>-pwf</c>, <c>--nossl</c>, <c>--debug</c>, <c>--debug-on-fail</c>,
/// <c>--traceparent</c>, and the same as <c>server=</c>, <c>port=</c>, <c>username=</c>, <c>password=</c>,
/// <c>passwordfile=</c>, <c>nossl=</c>... Then the rest as the server parses it: the command name, <c>key=value</c>
/// parameters (split at the first <c>=</c>; a bare word is a key with an empty value), <c>--flag</c> as
/// <c>flag=true</c>. Parameters keep their order; a key given twice is read at its first occurrence, as xe does.
/// </summary>
public sealed class CliArguments
{
    public string Command { get; private set; } = "";

    /// <summary>The command's parameters in order (flags included as <c>flag=true</c>).</summary>
    public List<KeyValuePair<string, string>> Parameters { get; } = [];

    /// <summary>The <c>--flags</c> given, without their dashes.</summary>
    public HashSet<string> Flags { get; } = new(StringComparer.Ordinal);

    public string? Server { get; private set; }

    public int? Port { get; private set; }

    public string? User { get; private set; }

    public string? Password { get; private set; }

    public string? PasswordFile { get; private set; }

    /// <summary><c>--nossl</c> or <c>nossl=</c>: plain HTTP (port 80 by default) instead of HTTPS (443).</summary>
    public bool? NoSsl { get; private set; }

    public bool Debug { get; private set; }

    public bool DebugOnFail { get; private set; }

    public string? TraceParent { get; private set; }

    /// <summary><c>-help</c> or <c>--help</c> anywhere: print the usage and stop.</summary>
    public bool HelpRequested { get; private set; }

    /// <summary><c>-version</c>: print the thin-CLI protocol version and stop.</summary>
    public bool VersionRequested { get; private set; }

    /// <summary>A bad client option (a port that is not a number): printed before the usage.</summary>
    public string? UsageComplaint { get; private set; }

    /// <summary>The words left to the command once the client's options are taken out.</summary>
    public List<string> CommandWords { get; } = [];

    public bool Minimal => IsTrue("minimal");

    public bool Force => IsTrue("force");

    public bool Multiple => IsTrue("multiple");

    /// <summary>The first value given for a key, or null.</summary>
    public string? Get(string key)
    {
        foreach (var (k, v) in Parameters)
        {
            if (k == key)
            {
                return v;
            }
        }

        return null;
    }

    private bool IsTrue(string key) => Get(key) is { } v && v.Equals("true", StringComparison.OrdinalIgnoreCase);

    /// <summary>Parses a command line; a malformed one throws <see cref="XeUsageError"/> (xe's <c>Syntax error</c>).</summary>
    public static CliArguments Parse(IReadOnlyList<string> args) => Parse(args, []);

    /// <summary>
    /// Parses a command line with XE_EXTRA_ARGS: the extra arguments' options count where the command line is silent,
    /// and their other words follow the command line's.
    /// </summary>
    public static CliArguments Parse(IReadOnlyList<string> args, IReadOnlyList<string> extraArgs)
    {
        var result = new CliArguments();
        if (extraArgs.Count > 0)
        {
            var extra = new CliArguments();
            extra.TakeClientOptions(extraArgs);
            result.TakeClientOptions(args);
            result.ApplyConfig(extra.ConnectionEntries());
            result.CommandWords.AddRange(extra.CommandWords);
            result.UsageComplaint ??= extra.UsageComplaint;
        }
        else
        {
            result.TakeClientOptions(args);
        }

        if (!result.HelpRequested && !result.VersionRequested && result.UsageComplaint is null)
        {
            result.ParseCommandWords();
        }

        return result;
    }

    /// <summary>
    /// Fills what the command line left out from <c>~/.xe</c>, as xe does: known keys set the connection, any other
    /// <c>key=value</c> line becomes a parameter of the command. A missing file changes nothing.
    /// </summary>
    public void ApplyConfigFile(string path)
    {
        if (!File.Exists(path))
        {
            return;
        }

        ApplyConfig(XeRcFile.Parse(File.ReadAllLines(path), out _));
    }

    /// <summary>Applies <c>~/.xe</c> entries (or XE_EXTRA_ARGS ones) under what the command line said.</summary>
    public void ApplyConfig(IEnumerable<KeyValuePair<string, string>> entries, bool overrideGiven = false)
    {
        var explicitly = overrideGiven ? [] : Snapshot();
        foreach (var (key, value) in entries)
        {
            if (!IsConnectionKeyword(key))
            {
                Parameters.Add(new(key, value));
                continue;
            }

            SetKeyword(key, value, onlyIfUnset: true, explicitly);
        }
    }

    private IEnumerable<KeyValuePair<string, string>> ConnectionEntries()
    {
        if (Server is not null)
        {
            yield return new("server", Server);
        }

        if (Port is { } port)
        {
            yield return new("port", port.ToString(CultureInfo.InvariantCulture));
        }

        if (User is not null)
        {
            yield return new("username", User);
        }

        if (Password is not null)
        {
            yield return new("password", Password);
        }

        if (PasswordFile is not null)
        {
            yield return new("passwordfile", PasswordFile);
        }

        if (NoSsl is { } nossl)
        {
            yield return new("nossl", nossl ? "true" : "false");
        }
    }

    private HashSet<string> Snapshot()
    {
        var set = new HashSet<string>(StringComparer.Ordinal);
        if (Server is not null)
        {
            set.Add("server");
        }

        if (Port is not null)
        {
            set.Add("port");
        }

        if (User is not null)
        {
            set.Add("username");
        }

        if (Password is not null)
        {
            set.Add("password");
        }

        if (PasswordFile is not null)
        {
            set.Add("passwordfile");
        }

        if (NoSsl is not null)
        {
            set.Add("nossl");
        }

        return set;
    }

    private static bool IsConnectionKeyword(string key) =>
        key is "server" or "port" or "username" or "password" or "passwordfile" or "nossl" or "debug" or "debugonfail" or "traceparent";

    private void TakeClientOptions(IReadOnlyList<string> args)
    {
        for (var i = 0; i < args.Count; i++)
        {
            var a = args[i];
            if (a is "-help" or "--help")
            {
                HelpRequested = true;
                continue;
            }

            if (a == "-version")
            {
                VersionRequested = true;
                continue;
            }

            string? keyword = a switch
            {
                "-s" or "-h" => "server",
                "-p" => "port",
                "-u" => "username",
                "-pw" => "password",
                "-pwf" => "passwordfile",
                "--traceparent" => "traceparent",
                _ => null,
            };
            if (keyword is not null && i + 1 < args.Count)
            {
                SetKeyword(keyword, args[++i], onlyIfUnset: false, null);
                continue;
            }

            switch (a)
            {
                case "--nossl":
                    NoSsl = true;
                    continue;
                case "--debug":
                    Debug = true;
                    continue;
                case "--debug-on-fail":
                    DebugOnFail = true;
                    continue;
            }

            var eq = a.IndexOf('=', StringComparison.Ordinal);
            if (eq >= 0 && IsConnectionKeyword(a[..eq]))
            {
                SetKeyword(a[..eq], a[(eq + 1)..], onlyIfUnset: false, null);
                continue;
            }

            CommandWords.Add(a);
        }
    }

    private void SetKeyword(string key, string value, bool onlyIfUnset, HashSet<string>? given)
    {
        if (onlyIfUnset && given!.Contains(key))
        {
            return;
        }

        switch (key)
        {
            case "server":
                Server = value;
                break;
            case "port":
                if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port > 65535)
                {
                    UsageComplaint = "Port number must be an integer (0-65535)";
                    break;
                }

                Port = port;
                break;
            case "username":
                User = value;
                break;
            case "password":
                Password = value;
                break;
            case "passwordfile":
                PasswordFile = value;
                break;
            case "nossl":
                NoSsl = bool.TryParse(value, out var nossl) ? nossl : NoSsl;
                break;
            case "debug":
                Debug = bool.TryParse(value, out var debug) && debug;
                break;
            case "debugonfail":
                DebugOnFail = bool.TryParse(value, out var debugOnFail) && debugOnFail;
                break;
            case "traceparent":
                TraceParent = value;
                break;
        }
    }

    /// <summary>The server's reading of the words: the command, then parameters; malformed input is a syntax error.</summary>
    private void ParseCommandWords()
    {
        if (CommandWords.Count == 0)
        {
            return;
        }

        // xe turns every failure of this step into "Syntax error: " with nothing after it.
        if (CommandWords[0].Contains('=', StringComparison.Ordinal))
        {
            throw XeUsageError.Syntax();
        }

        Command = CommandWords[0];
        for (var i = 1; i < CommandWords.Count; i++)
        {
            var w = CommandWords[i];
            if (w.StartsWith("--", StringComparison.Ordinal))
            {
                Flags.Add(w[2..]);
                Parameters.Add(new(w[2..], "true"));
            }
            else if (w.StartsWith('-'))
            {
                // A one-dash switch the client did not take (-u, -pw, -s, -h, -p are taken): xe has no other.
                throw XeUsageError.Syntax();
            }
            else
            {
                var eq = w.IndexOf('=', StringComparison.Ordinal);
                Parameters.Add(eq < 0 ? new(w, "") : new(w[..eq], w[(eq + 1)..]));
            }
        }
    }
}
