namespace Corral.Cli;

/// <summary>
/// <c>~/.xe</c> as xe reads it: one <c>key=value</c> per line, blank lines skipped, the value is everything after the
/// first <c>=</c> (not trimmed). A line without <c>=</c> spoils the whole file: xe then loads no defaults at all and
/// says "Error parsing rc file. No defaults loaded".
/// </summary>
public static class XeRcFile
{
    public const string ParseErrorMessage = "Error parsing rc file. No defaults loaded";

    public static IReadOnlyList<KeyValuePair<string, string>> Parse(IEnumerable<string> lines, out string? error)
    {
        error = null;
        var entries = new List<KeyValuePair<string, string>>();
        foreach (var raw in lines)
        {
            var line = raw.TrimEnd('\r');
            if (line.Length == 0)
            {
                continue;
            }

            var eq = line.IndexOf('=', StringComparison.Ordinal);
            if (eq < 0)
            {
                error = ParseErrorMessage;
                return [];
            }

            entries.Add(new(line[..eq], line[(eq + 1)..]));
        }

        return entries;
    }

    /// <summary>
    /// The XE_EXTRA_ARGS environment variable: comma-separated arguments, a backslash keeping a comma in a value.
    /// </summary>
    public static IReadOnlyList<string> SplitExtraArgs(string? text)
    {
        var result = new List<string>();
        if (string.IsNullOrEmpty(text))
        {
            return result;
        }

        var current = new System.Text.StringBuilder();
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (c == '\\' && i + 1 < text.Length && text[i + 1] == ',')
            {
                current.Append(',');
                i++;
            }
            else if (c == ',')
            {
                if (current.Length > 0)
                {
                    result.Add(current.ToString());
                }

                current.Clear();
            }
            else if (c != '\\')
            {
                current.Append(c);
            }
        }

        if (current.Length > 0)
        {
            result.Add(current.ToString());
        }

        return result;
    }
}
