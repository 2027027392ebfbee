using Corral.Cli.Records;

namespace Corral.Cli.Operations;

/// <summary>A command's <c>key=value</c> parameters, read the way xe reads them (the first of a repeated key wins).</summary>
public sealed class XeParams(IReadOnlyList<KeyValuePair<string, string>> all)
{
    /// <summary>xe's <c>stdparams</c>: never taken as field filters.</summary>
    public static readonly IReadOnlySet<string> StandardParams = new HashSet<string>(StringComparer.Ordinal)
    {
        "server", "password", "port", "username", "minimal", "force", "multiple", "all", "message-priority", "trace",
    };

    public IReadOnlyList<KeyValuePair<string, string>> All => all;

    public string? Get(string key)
    {
        foreach (var (k, v) in all)
        {
            if (k == key)
            {
                return v;
            }
        }

        return null;
    }

    public bool Has(string key) => all.Any(p => p.Key == key);

    public string Required(string key) => Get(key) ?? throw XeUsageError.RequiredParameter(key);

    /// <summary>A boolean parameter (true/t/yes/y/1, false/f/no/n/0); xe's error for anything else.</summary>
    public bool Bool(string key, bool defaultValue = false) => Get(key) is { } v ? XeValues.ParseBool(key, v) : defaultValue;

    /// <summary>
    /// xe's <c>read_map_params</c>: the <c>prefix:key=value</c> parameters (<c>device-config:location=/srv</c>) as
    /// (key, value) pairs.
    /// </summary>
    public IReadOnlyList<KeyValuePair<string, string>> Map(string prefix) =>
        all.Where(p => p.Key.StartsWith(prefix, StringComparison.Ordinal) && p.Key.Length > prefix.Length + 1)
            .Select(p => new KeyValuePair<string, string>(p.Key[(prefix.Length + 1)..], p.Value))
            .ToList();

    /// <summary>The <c>prefix:key=value</c> parameters as the map a XenAPI call takes (the first of a repeated key wins).</summary>
    public Dictionary<string, string> MapOf(string prefix)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in Map(prefix))
        {
            map.TryAdd(key, value);
        }

        return map;
    }

    /// <summary>The parameters that select objects: all but the standard ones and the command's own.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Filters(IEnumerable<string> ignored)
    {
        var skip = new HashSet<string>(ignored, StringComparer.Ordinal);
        return all.Where(p =>
        {
            var stem = p.Key.Split(':')[0];
            return !StandardParams.Contains(stem) && !skip.Contains(stem);
        }).ToList();
    }
}
