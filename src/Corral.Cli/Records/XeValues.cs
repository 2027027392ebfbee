using System.Globalization;

namespace Corral.Cli.Records;

/// <summary>Reading what the user typed, the way xe reads it (record_util.ml and cli_operations.ml).</summary>
public static class XeValues
{
    /// <summary>
    /// xe's <c>bytes_of_string</c>: an integer, optionally followed (with or without spaces) by a unit, in any case:
    /// <c>b</c>/<c>bytes</c>, <c>k</c>/<c>kb</c>/<c>kib</c>, <c>m</c>/<c>mb</c>/<c>mib</c>, <c>g</c>/<c>gb</c>/<c>gib</c>,
    /// <c>t</c>/<c>tb</c>/<c>tib</c>, all powers of 1024. Null when the text is not a size.
    /// </summary>
    public static long? TryParseBytes(string text)
    {
        var i = 0;
        while (i < text.Length && char.IsWhiteSpace(text[i]))
        {
            i++;
        }

        var start = i;
        if (i < text.Length && text[i] is '+' or '-')
        {
            i++;
        }

        var digits = i;
        while (i < text.Length && char.IsAsciiDigit(text[i]))
        {
            i++;
        }

        if (i == digits || !long.TryParse(text.AsSpan(start, i - start), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var size) || size < 0)
        {
            return null;
        }

        while (i < text.Length && char.IsWhiteSpace(text[i]))
        {
            i++;
        }

        var end = i;
        while (end < text.Length && !char.IsWhiteSpace(text[end]))
        {
            end++;
        }

        var factor = text[i..end].ToLowerInvariant() switch
        {
            "" or "b" or "bytes" => 1L,
            "k" or "kb" or "kib" => 1L << 10,
            "m" or "mb" or "mib" => 1L << 20,
            "g" or "gb" or "gib" => 1L << 30,
            "t" or "tb" or "tib" => 1L << 40,
            _ => 0L,
        };
        if (factor == 0)
        {
            return null;
        }

        try
        {
            return checked(size * factor);
        }
        catch (OverflowException)
        {
            return null;
        }
    }

    /// <summary>A size for the named field, or xe's error.</summary>
    public static long ParseBytes(string field, string text) =>
        TryParseBytes(text) ?? throw new XeFailure(
            $"Failed to parse field '{field}': expecting an integer (possibly with suffix KiB, MiB, GiB, TiB), got '{text}'");

    /// <summary>xe's boolean parameters (<c>Record_util.bool_of_string</c>): true/t/yes/y/1 and false/f/no/n/0, any case.</summary>
    public static bool? TryParseBool(string text) => text.ToLowerInvariant() switch
    {
        "true" or "t" or "yes" or "y" or "1" => true,
        "false" or "f" or "no" or "n" or "0" => false,
        _ => null,
    };

    public static bool ParseBool(string param, string text) =>
        TryParseBool(text) ?? throw new XeFailure(
            $"Failed to parse parameter '{param}': Expected 'true','t','yes','y','1','false','f','no','n','0' got {text}");

    /// <summary>OCaml's <c>Int64.of_string</c> as a field setter reads it.</summary>
    public static long ParseInt(string field, string text) =>
        long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l)
            ? l
            : throw new XeFailure($"Failed to parse parameter '{field}': expecting an integer");

    /// <summary>xe's <c>safe_bool_of_string</c>: exactly <c>true</c> or <c>false</c>.</summary>
    public static bool ParseStrictBool(string field, string text) => text switch
    {
        "true" => true,
        "false" => false,
        _ => throw new XeFailure($"Failed to parse parameter '{field}': expecting a boolean (true or false)"),
    };

    /// <summary>
    /// OCaml's bare <c>bool_of_string</c>, used by a few setters: exactly <c>true</c> or <c>false</c>; xe's p_set turns
    /// its failure into <c>Parameter &lt;name&gt; must be a boolean (true or false)</c>.
    /// </summary>
    public static bool ParsePlainBool(string param, string text) => text switch
    {
        "true" => true,
        "false" => false,
        _ => throw new XeFailure($"Parameter {param} must be a boolean (true or false)"),
    };

    /// <summary>
    /// OCaml's bare <c>Int64.of_string</c>, used by a few setters: its failure is no xe message but an uncaught
    /// <c>Failure</c>, which xe reports as an internal error.
    /// </summary>
    public static long ParsePlainInt(string text) =>
        long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l)
            ? l
            : throw new Corral.Model.XenApiException(Corral.Model.ErrorCodes.InternalError, "Failure: Int64.of_string");

    /// <summary>
    /// xapi's generated <c>&lt;enum&gt;_of_string</c>: the wire name matched without regard to case, else
    /// <c>Expected one of 'a', 'b', got x</c>.
    /// </summary>
    public static string ParseEnum(string text, IReadOnlyList<string> wireNames) =>
        wireNames.FirstOrDefault(w => w.Equals(text, StringComparison.OrdinalIgnoreCase))
        ?? throw new XeFailure($"Expected one of {string.Join(", ", wireNames.Select(w => $"'{w}'"))}, got {text.ToLowerInvariant()}");

    /// <summary><c>domain_type_of_string</c>: hvm, pv, pv-in-pvh or pvh, in any case.</summary>
    public static object ParseDomainType(string text) => text.ToLowerInvariant() switch
    {
        "hvm" => "hvm",
        "pv" => "pv",
        "pv-in-pvh" => "pv_in_pvh",
        "pvh" => "pvh",
        var s => throw new XeFailure($"Invalid domain type. Got {s}"),
    };

    /// <summary><c>allocation_algorithm_of_string</c>: depth-first or breadth-first, in any case.</summary>
    public static object ParseAllocationAlgorithm(string text) => text.ToLowerInvariant() switch
    {
        "depth-first" => "depth_first",
        "breadth-first" => "breadth_first",
        var s => throw new XeFailure($"Invalid allocation algorithm. Got {s}"),
    };

    /// <summary><c>string_to_vm_operation</c>: an operation as xe spells it, else xapi's INVALID_VALUE.</summary>
    public static string ParseVmOperation(string text) =>
        XeFormat.VmOperationWire(text) ?? throw new Corral.Model.XenApiException(Corral.Model.ErrorCodes.InvalidValue, "blocked_operation", text);

    /// <summary>xe's <c>get_words ','</c>: the text split on commas, nothing for an empty text.</summary>
    public static IReadOnlyList<string> Words(string text) => text.Length == 0 ? [] : text.Split(',');

    public static double ParseFloat(string field, string text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d)
            ? d
            : throw new XeFailure($"Parameter {field} must be a floating-point number");
}
