using Corral.Api.Auth;
using Corral.Auth.Ldap;
using Xunit;

namespace Corral.UnitTests;

/// <summary>Active Directory's SIDs and the settings xapi's AD plugin keeps, read as Corral reads them.</summary>
public sealed class ActiveDirectorySettingsTests
{
    private static DirectorySettings Settings(string domain, params (string Key, string Value)[] config) =>
        new("AD", domain, config.ToDictionary(c => c.Key, c => c.Value), "pw");

    [Fact]
    public void A_binary_sid_reads_as_windows_writes_it()
    {
        // A user's objectSid as a Samba AD DC answers it (ldapsearch's base64).
        var sid = Convert.FromBase64String("AQUAAAAAAAUVAAAA4Uom4hzWAG20eydkTwQAAA==");
        Assert.Equal("S-1-5-21-3794160353-1828771356-1680309172-1103", SecurityIdentifiers.ToText(sid));
        Assert.Equal("S-1-5-32-544", SecurityIdentifiers.ToText([1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 0x20, 2, 0, 0]));
        Assert.Null(SecurityIdentifiers.ToText(sid.AsSpan(0, sid.Length - 1)));
        Assert.Null(SecurityIdentifiers.ToText([2, 0, 0, 0, 0, 0, 0, 5]));
        Assert.True(SecurityIdentifiers.IsSid("S-1-5-21-3794160353-1828771356-1680309172-1103"));
        Assert.False(SecurityIdentifiers.IsSid("S-1-5-21-x"));
        Assert.False(SecurityIdentifiers.IsSid("CN=alice,CN=Users,DC=corral,DC=lab"));
        Assert.False(SecurityIdentifiers.IsSid("S-1-5)(objectClass=*"));
    }

    [Fact]
    public void The_computer_account_goes_where_xapi_puts_it()
    {
        Assert.Equal("CN=Computers,DC=corral,DC=lab", AdSettings.From(Settings("corral.lab")).ComputerContainer);
        Assert.Equal("OU=Hypervisors,OU=Servers,DC=corral,DC=lab", AdSettings.From(Settings("Corral.Lab.", ("ou", "Servers/Hypervisors"))).ComputerContainer);
        Assert.Equal("OU=Servers,DC=corral,DC=lab", AdSettings.From(Settings("corral.lab", ("ou", "OU=Servers"))).ComputerContainer);
        Assert.Equal("OU=Servers,DC=corral,DC=lab", AdSettings.From(Settings("corral.lab", ("ou", "OU=Servers,DC=corral,DC=lab"))).ComputerContainer);
        Assert.Equal("CORRAL-1F0C9A2B", AdSettings.DefaultComputerName("1f0c9a2b-0000-4000-8000-000000000000"));
        Assert.Equal("HV01", AdSettings.From(Settings("corral.lab", ("netbios-name", "HV01"))).ComputerName);
    }

    [Fact]
    public void Bad_settings_are_named()
    {
        Assert.Empty(AdSettings.Problems(Settings("corral.lab", ("domain-controllers", "10.0.0.1, dc2.corral.lab:3269"))));
        Assert.Contains(AdSettings.Problems(Settings("ldap://corral.lab")), p => p.Contains("service_name", StringComparison.Ordinal));
        Assert.Contains(AdSettings.Problems(Settings("corral.lab", ("netbios-name", "MUCH-TOO-LONG-A-NAME"))), p => p.Contains("netbios-name", StringComparison.Ordinal));
        Assert.Contains(AdSettings.Problems(Settings("corral.lab", ("domain-controllers", "dc1:notaport"))), p => p.Contains("domain-controllers", StringComparison.Ordinal));
        Assert.Contains(AdSettings.JoinProblems(Settings("corral.lab", ("user", @"CORRAL\Administrator"))), p => p.Contains("UPN format", StringComparison.Ordinal));
        Assert.Contains(AdSettings.JoinProblems(new DirectorySettings("AD", "corral.lab", new Dictionary<string, string>(), null)), p => p.Contains("config:user", StringComparison.Ordinal));
    }
}
