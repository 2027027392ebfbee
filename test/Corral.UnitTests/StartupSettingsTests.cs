using Corral.Agent.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;
using Xunit;

namespace Corral.UnitTests;

/// <summary>The agent's settings checked at start (the package's /etc/corral/agent.conf): each bad one named.</summary>
public sealed class StartupSettingsTests
{
    private static readonly Dictionary<string, string?> Configured = new()
    {
        ["Corral:Agent:HostName"] = "host1",
        ["Corral:Agent:Address"] = "192.0.2.11",
        ["Corral:Agent:StateDirectory"] = "/var/lib/corral",
        ["Corral:Etcd:Member:Enabled"] = "true",
        ["Corral:Etcd:Member:PeerUrl"] = "https://192.0.2.11:2380",
        ["Corral:Etcd:Member:ClientUrl"] = "https://192.0.2.11:2379",
        ["Corral:Https:HttpsPort"] = "8443",
    };

    private static StartupSettings Read(params (string Key, string? Value)[] changes)
    {
        var values = new Dictionary<string, string?>(Configured);
        foreach (var (key, value) in changes)
        {
            values[key] = value;
        }

        return StartupSettings.Read(new ConfigurationBuilder().AddInMemoryCollection(values).Build());
    }

    [Fact]
    public void Good_settings_are_read_as_given()
    {
        var settings = Read();
        Assert.Equal("192.0.2.11", settings.Agent.Address);
        Assert.Equal(8443, settings.Https.HttpsPort);
        Assert.Equal("https://192.0.2.11:2380", settings.Etcd.Member.PeerUrl);
    }

    [Theory]
    [InlineData("Corral:Agent:Address", "", "Corral:Agent:Address must be this host's management IP address, not ''")]
    [InlineData("Corral:Agent:Address", "host1.example", "Corral:Agent:Address must be this host's management IP address")]
    [InlineData("Corral:Agent:HostName", " ", "Corral:Agent:HostName must not be empty")]
    [InlineData("Corral:Agent:StateDirectory", "state", "Corral:Agent:StateDirectory must be an absolute path, not 'state'")]
    [InlineData("Corral:Agent:MemoryTotalBytes", "-1", "Corral:Agent:MemoryTotalBytes must be 0")]
    [InlineData("Corral:Agent:CleanShutdownTimeout", "00:00:00", "Corral:Agent:CleanShutdownTimeout must be positive")]
    [InlineData("Corral:Https:HttpsPort", "70000", "Corral:Https:HttpsPort must be a port number")]
    [InlineData("Corral:Https:HttpsPort", "https", "'Corral:Https:HttpsPort' to type 'System.Int32'")]
    [InlineData("Corral:Https:ListenAddress", "everywhere", "Corral:Https:ListenAddress must be * or an IP address")]
    [InlineData("Corral:Etcd:Member:ClientUrl", "http://192.0.2.11:2379", "Corral:Etcd:Member:ClientUrl (http://192.0.2.11:2379) must be an https URL")]
    public void A_bad_setting_is_refused_naming_it(string key, string value, string message)
    {
        var refused = Assert.Throws<OptionsValidationException>(() => Read((key, value)));
        Assert.Contains(refused.Failures, f => f.Contains(message, StringComparison.Ordinal));
    }

    [Fact]
    public void Every_bad_setting_is_named_at_once()
    {
        var refused = Assert.Throws<OptionsValidationException>(() => Read(("Corral:Agent:Address", ""), ("Corral:Etcd:Member:PeerUrl", "")));
        Assert.Equal(2, refused.Failures.Count());
    }
}
