using System.Globalization;

namespace Corral.Model;

/// <summary>XenAPI's datetime spelling on the wire: <c>20261124T10:15:00Z</c> (ISO 8601 basic date, extended time).</summary>
public static class XenDateTime
{
    public static readonly DateTime Epoch = DateTime.UnixEpoch;

    private static readonly string[] Formats =
    [
        "yyyyMMdd'T'HH:mm:ss'Z'",
        "yyyyMMdd'T'HH:mm:ss",
        "yyyyMMdd'T'HHmmss'Z'",
        "yyyy-MM-dd'T'HH:mm:ss'Z'",
        "yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'",
        "yyyy-MM-dd'T'HH:mm:ss",
    ];

    public static string Format(DateTime value) =>
        value.ToUniversalTime().ToString("yyyyMMdd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    public static DateTime Parse(string text)
    {
        if (DateTime.TryParseExact(text, Formats, CultureInfo.InvariantCulture,
                DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var value))
        {
            return DateTime.SpecifyKind(value, DateTimeKind.Utc);
        }

        throw new FormatException($"'{text}' is not a XenAPI datetime");
    }
}
