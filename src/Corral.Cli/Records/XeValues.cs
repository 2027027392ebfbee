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

    public static double ParseFloat(string field, string text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d)
            ? d
            : throw new XeFailure($"Parameter {field} must be a floating-point number");
}
