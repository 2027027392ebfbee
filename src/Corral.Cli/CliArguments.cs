using System.Globalization;

namespace Corral.Cli;

/// <summary>An xe command line: the command, key=value parameters, --flags, and the connection settings.</summary>
public sealed class CliArguments
{
    public string Command { get; private set; } = "";

    /// <summary>key=value parameters in order; keys may repeat for map parameters (other-config:k=v).</summary>
    public List<KeyValuePair<string, string>> Parameters { get; } = [];

    public HashSet<string> Flags { get; } = new(StringComparer.Ordinal);

    public string? Server { get; private set; }

    public int? Port { get; private set; }

    public string? User { get; private set; }

    public string? Password { get; private set; }

    public bool Minimal => Flags.Contains("minimal");

    public bool Force => Flags.Contains("force");

    public bool Multiple => Flags.Contains("multiple");

    public string? Get(string key) => Parameters.LastOrDefault(p => p.Key == key).Value;

    /// <summary>Parses xe's syntax; throws <see cref="CliException"/> with xe's wording for malformed input.</summary>
    public static CliArguments Parse(IReadOnlyList<string> args)
    {
        var result = new CliArguments();
        for (var i = 0; i < args.Count; i++)
        {
            var a = args[i];
            string Next() => i + 1 < args.Count ? args[++i] : throw new CliException($"Option {a} requires an argument");
            switch (a)
            {
                case "-s":
                    result.Server = Next();
                    continue;
                case "-p":
                    result.Port = int.Parse(Next(), CultureInfo.InvariantCulture);
                    continue;
                case "-u":
                    result.User = Next();
                    continue;
                case "-pw":
                    result.Password = Next();
                    continue;
                case "-pwf":
                    result.Password = File.ReadAllText(Next()).TrimEnd('\n', '\r');
                    continue;
            }

            if (a.StartsWith("--", StringComparison.Ordinal))
            {
                result.Flags.Add(a[2..]);
            }
            else if (result.Command.Length == 0)
            {
                result.Command = a;
            }
            else
            {
                var eq = a.IndexOf('=', StringComparison.Ordinal);
                if (eq <= 0)
                {
                    throw new CliException($"Syntax error: '{a}' should be of the form key=value");
                }

                result.Parameters.Add(new(a[..eq], a[(eq + 1)..]));
            }
        }

        return result;
    }

    /// <summary>Fills what the command line left out from ~/.xe (server=, port=, username=, password=), as xe does.</summary>
    public void ApplyConfigFile(string path)
    {
        if (!File.Exists(path))
        {
            return;
        }

        foreach (var line in File.ReadAllLines(path))
        {
            var eq = line.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                continue;
            }

            var (key, value) = (line[..eq].Trim(), line[(eq + 1)..].Trim());
            switch (key)
            {
                case "server":
                    Server ??= value;
                    break;
                case "port":
                    Port ??= int.Parse(value, CultureInfo.InvariantCulture);
                    break;
                case "username":
                    User ??= value;
                    break;
                case "password":
                    Password ??= value;
                    break;
            }
        }
    }
}

/// <summary>A user-facing error, printed as is, exit code 1.</summary>
public sealed class CliException(string message) : Exception(message);
