using Corral.Cli.Api;
using Corral.Api.Client;
using Corral.Cli.Records;
using Corral.Model;

namespace Corral.Cli.Output;

/// <summary>
/// xe's rendering of a XenAPI error (cli_util.ml <c>server_error</c>): a known error prints its description, then
/// <c>param: value</c> per parameter (<c>&lt;extra&gt;: v</c> for more values than names, <c>name: &lt;unknown&gt;</c>
/// for fewer); an unknown one prints <c>Error code: CODE</c> and <c>Error parameters: p1, p2</c>. References among the
/// parameters print as <c>uuid (name-label)</c> of what they point to, when it still exists.
/// </summary>
public static class ErrorText
{
    public static string Render(string code, IReadOnlyList<string> parameters)
    {
        if (XenApiErrorDocs.Find(code) is not { } doc)
        {
            return $"Error code: {code}\nError parameters: {string.Join(", ", parameters)}";
        }

        return string.Join("\n", [doc.Description, .. DescribeParameters(doc.Parameters, parameters)]);
    }

    /// <summary>The one-line form used for each failure of a --multiple operation without a description.</summary>
    public static string Short(string code, IReadOnlyList<string> parameters) => $"{code}: [ {string.Join("; ", parameters)} ]";

    public static IEnumerable<string> DescribeParameters(IReadOnlyList<string> names, IReadOnlyList<string> values)
    {
        for (var i = 0; i < Math.Max(names.Count, values.Count); i++)
        {
            if (i < names.Count && i < values.Count)
            {
                yield return $"{names[i]}: {values[i]}";
            }
            else if (i < values.Count)
            {
                yield return $"<extra>: {values[i]}";
            }
            else
            {
                yield return $"{names[i]}: <unknown>";
            }
        }
    }

    /// <summary>The error's parameters with references turned into <c>uuid (name-label)</c> where they resolve.</summary>
    public static async Task<IReadOnlyList<string>> ConvertReferencesAsync(XenApiException error, PoolCache? cache, XenApiSession? session, CancellationToken cancellationToken)
    {
        var names = XenApiErrorDocs.Find(error.Code)?.Parameters ?? [];
        var result = new List<string>();
        for (var i = 0; i < error.Parameters.Count; i++)
        {
            var value = error.Parameters[i];
            result.Add(await ConvertReferenceAsync(value, i < names.Count ? names[i] : null, cache, session, cancellationToken));
        }

        return result;
    }

    private static readonly string[] ReferenceClasses = ["VM", "host", "SR", "VDI", "VBD", "VIF", "network", "PIF", "PBD", "pool", "task"];

    private static async Task<string> ConvertReferenceAsync(string value, string? parameterName, PoolCache? cache, XenApiSession? session, CancellationToken cancellationToken)
    {
        if (!value.StartsWith(OpaqueRef.Prefix, StringComparison.Ordinal) || OpaqueRef.IsNull(value))
        {
            return value;
        }

        var record = cache?.FindAnywhere(value);
        if (record is null && session is { IsLoggedIn: true })
        {
            var hint = ReferenceClasses.FirstOrDefault(c => c.Equals(parameterName, StringComparison.OrdinalIgnoreCase));
            foreach (var cls in hint is null ? ReferenceClasses : [hint, .. ReferenceClasses.Where(c => c != hint)])
            {
                try
                {
                    var fields = XenValue.AsRecord(await session.CallAsync($"{cls}.get_record", cancellationToken, value));
                    record = new XenRecord(cls, value, fields);
                    break;
                }
                catch (XenApiException)
                {
                    // Not an object of this class (or gone): try the next one.
                }
            }
        }

        if (record is null)
        {
            return value;
        }

        return record.Has("name_label") ? $"{record.Uuid} ({record.Str("name_label")})" : record.Uuid;
    }
}
