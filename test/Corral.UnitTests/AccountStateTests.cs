using Corral.Api.Auth;
using Corral.Auth.Ldap;
using Xunit;

namespace Corral.UnitTests;

/// <summary>
/// A directory account's state as xapi's subject information carries it, from Active Directory's, OpenLDAP's password
/// policy's and the shadow attributes, and what suspends a subject as xapi reads those fields.
/// </summary>
public sealed class AccountStateTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 5, 12, 0, 0, TimeSpan.Zero);

    private static IReadOnlyDictionary<string, string> Fields(params (string Attribute, string Value)[] attributes) =>
        AccountState.Fields(name => attributes.FirstOrDefault(a => a.Attribute == name).Value, Now);

    private static string[] Suspended(IReadOnlyDictionary<string, string> fields) =>
        fields.Where(f => f.Value == "true").Select(f => f.Key).Order(StringComparer.Ordinal).ToArray();

    [Fact]
    public void An_account_with_none_of_the_attributes_is_not_suspended()
    {
        var fields = Fields();
        Assert.Equal(4, fields.Count);
        Assert.Empty(Suspended(fields));
        Assert.Null(SubjectSuspension.Of(fields));
    }

    [Fact]
    public void Active_directorys_flags_and_expiry_are_read()
    {
        Assert.Equal(["subject-account-disabled"], Suspended(Fields(("userAccountControl", "514"))));
        Assert.Empty(Suspended(Fields(("userAccountControl", "512"))));
        Assert.Equal(["subject-account-locked", "subject-password-expired"],
            Suspended(Fields(("msDS-User-Account-Control-Computed", (0x10 | 0x800000).ToString(System.Globalization.CultureInfo.InvariantCulture)))));

        var yesterday = Now.AddDays(-1).ToFileTime().ToString(System.Globalization.CultureInfo.InvariantCulture);
        var tomorrow = Now.AddDays(1).ToFileTime().ToString(System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(["subject-account-expired"], Suspended(Fields(("accountExpires", yesterday))));
        Assert.Empty(Suspended(Fields(("accountExpires", tomorrow))));
        Assert.Empty(Suspended(Fields(("accountExpires", "0"))));
        Assert.Empty(Suspended(Fields(("accountExpires", long.MaxValue.ToString(System.Globalization.CultureInfo.InvariantCulture)))));
    }

    [Fact]
    public void OpenLdaps_lockout_and_the_shadow_attributes_are_read()
    {
        Assert.Equal(["subject-account-locked"], Suspended(Fields(("pwdAccountLockedTime", "000001010000Z"))));

        var today = (long)(Now - DateTimeOffset.UnixEpoch).TotalDays;
        Assert.Equal(["subject-account-expired"], Suspended(Fields(("shadowExpire", "1"))));
        Assert.Empty(Suspended(Fields(("shadowExpire", (today + 30).ToString(System.Globalization.CultureInfo.InvariantCulture)))));
        Assert.Empty(Suspended(Fields(("shadowExpire", "-1"))));
        Assert.Equal(["subject-password-expired"], Suspended(Fields(("shadowLastChange", (today - 100).ToString(System.Globalization.CultureInfo.InvariantCulture)),
            ("shadowMax", "90"))));
        Assert.Empty(Suspended(Fields(("shadowLastChange", (today - 100).ToString(System.Globalization.CultureInfo.InvariantCulture)), ("shadowMax", "99999"))));
    }

    [Fact]
    public void A_subject_is_suspended_by_any_flag_not_false_a_missing_one_or_no_information()
    {
        var fine = new Dictionary<string, string>
        {
            ["subject-account-disabled"] = "false", ["subject-account-locked"] = "FALSE", ["subject-account-expired"] = "false", ["subject-password-expired"] = "false",
        };
        Assert.Null(SubjectSuspension.Of(fine));
        Assert.Equal("account disabled", SubjectSuspension.Of(new Dictionary<string, string>(fine) { ["subject-account-disabled"] = "true" }));
        var missing = new Dictionary<string, string>(fine);
        missing.Remove("subject-password-expired");
        Assert.Equal("password expired", SubjectSuspension.Of(missing));
        Assert.Equal("not found in the directory", SubjectSuspension.Of(null));
    }
}
