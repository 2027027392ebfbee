using System.Globalization;

namespace Corral.Auth.Ldap;

/// <summary>
/// Whether a directory account may log in, as xapi's subject information says it (<c>subject-account-disabled</c>,
/// <c>-locked</c>, <c>-expired</c>, <c>subject-password-expired</c>), from the attributes the common directories keep:
/// Active Directory's <c>userAccountControl</c> (and its computed form, which knows lockouts and expired passwords) and
/// <c>accountExpires</c>; OpenLDAP's password policy (<c>pwdAccountLockedTime</c>); and the shadow attributes of a
/// posixAccount (<c>shadowExpire</c>, <c>shadowLastChange</c> + <c>shadowMax</c>). An attribute that is absent suspends
/// nothing.
/// </summary>
public static class AccountState
{
    /// <summary>The attributes read for it (on a read of one entry: AD computes its flag only there).</summary>
    public static readonly string[] Attributes =
        ["userAccountControl", "msDS-User-Account-Control-Computed", "accountExpires", "pwdAccountLockedTime", "shadowExpire", "shadowLastChange", "shadowMax"];

    private const long AccountDisable = 0x2;
    private const long Lockout = 0x10;
    private const long PasswordExpired = 0x800000;

    /// <summary>The four fields, each "true" or "false".</summary>
    public static IReadOnlyDictionary<string, string> Fields(Func<string, string?> attribute, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(attribute);
        var control = Number(attribute("userAccountControl")) ?? 0;
        var computed = Number(attribute("msDS-User-Account-Control-Computed")) ?? 0;
        var today = (long)Math.Floor((now - DateTimeOffset.UnixEpoch).TotalDays);
        var disabled = (control & AccountDisable) != 0;
        var locked = ((control | computed) & Lockout) != 0 || attribute("pwdAccountLockedTime") is { Length: > 0 };
        var expired = AdExpired(Number(attribute("accountExpires")), now) || Number(attribute("shadowExpire")) is { } expire and >= 0 && expire <= today;
        var passwordExpired = (computed & PasswordExpired) != 0 || ShadowPasswordExpired(attribute, today);
        return new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["subject-account-disabled"] = Flag(disabled),
            ["subject-account-locked"] = Flag(locked),
            ["subject-account-expired"] = Flag(expired),
            ["subject-password-expired"] = Flag(passwordExpired),
        };
    }

    // AD's accountExpires: 100 ns intervals since 1601; 0 and the largest value mean never.
    private static bool AdExpired(long? accountExpires, DateTimeOffset now) =>
        accountExpires is { } ticks and > 0 and < long.MaxValue && DateTimeOffset.FromFileTime(ticks) <= now;

    private static bool ShadowPasswordExpired(Func<string, string?> attribute, long today) =>
        Number(attribute("shadowLastChange")) is { } changed and > 0 && Number(attribute("shadowMax")) is { } max and > 0 and < 99999
        && changed + max < today;

    private static string Flag(bool value) => value ? "true" : "false";

    private static long? Number(string? text) => long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) ? n : null;
}
