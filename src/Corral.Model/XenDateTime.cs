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

    /// <summary>
    /// The wire spelling: UTC with its 'Z', except for a local clock reading (<see cref="DateTimeKind.Local"/>, as
    /// <c>host.get_server_localtime</c> answers), which xapi writes as the local wall time with no zone.
    /// </summary>
    public static string Format(DateTime value) => value.Kind == DateTimeKind.Local
        ? value.ToString("yyyyMMdd'T'HH:mm:ss", CultureInfo.InvariantCulture)
        : value.ToUniversalTime().ToString("yyyyMMdd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    /// <summary>Reads a datetime that may be a local wall time (no zone): such a value comes back as <see cref="DateTimeKind.Local"/>.</summary>
    public static DateTime ParseKeepingLocal(string text) =>
        DateTime.TryParseExact(text, "yyyyMMdd'T'HH:mm:ss", CultureInfo.InvariantCulture, DateTimeStyles.None, out var local)
            ? DateTime.SpecifyKind(local, DateTimeKind.Local)
            : Parse(text);

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
