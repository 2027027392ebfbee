namespace Corral.Cli.Tests;

/// <summary>One parameter of an xe class as xapi's CLI defines it: its printed label and what else xe says of it.</summary>
public sealed record XeParameter(string Label, bool Hidden, bool Expensive, bool KeySet)
{
    /// <summary>The name: the label up to its qualifier.</summary>
    public string Name => Label[..Label.IndexOf(" (", StringComparison.Ordinal)];
}

/// <summary>xe-class-parameters.txt: the parameters of each xe class, in xapi's order (facts from records.ml).</summary>
public static class XeParameterTable
{
    private static readonly Lazy<IReadOnlyDictionary<string, IReadOnlyList<XeParameter>>> Table = new(Load);

    public static IReadOnlyDictionary<string, IReadOnlyList<XeParameter>> Classes => Table.Value;

    /// <summary>The parameters of an xe class (template and snapshot are VMs).</summary>
    public static IReadOnlyList<XeParameter> Of(string cls) => Classes[cls is "template" or "snapshot" ? "vm" : cls];

    private static IReadOnlyDictionary<string, IReadOnlyList<XeParameter>> Load()
    {
        var classes = new Dictionary<string, IReadOnlyList<XeParameter>>(StringComparer.Ordinal);
        List<XeParameter>? current = null;
        foreach (var line in File.ReadLines(Path.Combine(AppContext.BaseDirectory, "xe-class-parameters.txt")))
        {
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            if (line.StartsWith('['))
            {
                current = [];
                classes[line[1..^1]] = current;
                continue;
            }

            var parts = line.Split('\t');
            var marks = parts.Length > 1 ? parts[1].Split(' ') : [];
            current!.Add(new XeParameter(parts[0], marks.Contains("hidden"), marks.Contains("expensive"), marks.Contains("key-set")));
        }

        return classes;
    }
}
