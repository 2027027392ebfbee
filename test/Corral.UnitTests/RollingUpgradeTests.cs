using Corral.Agent.Hosting;
using Corral.Api.Methods;
using Corral.Api.Pool;
using Corral.Model;
using Xunit;

namespace Corral.UnitTests;

/// <summary>xapi's rolling-upgrade rules over Corral's builds (<see cref="RollingUpgrade"/>), and where a host's build comes from.</summary>
public sealed class RollingUpgradeTests
{
    private static XenObject Host(string name, string? corralVersion) =>
        new(XenClasses.HostSchema, "OpaqueRef:" + name, new Dictionary<string, object?>
        {
            ["uuid"] = Guid.NewGuid().ToString(),
            ["name_label"] = name,
            ["software_version"] = corralVersion is null
                ? new Dictionary<string, object?>()
                : new Dictionary<string, object?> { [XenServerVersion.CorralVersionKey] = corralVersion },
        });

    private static readonly XenObject Vm = new(XenClasses.VMSchema, "OpaqueRef:vm", new Dictionary<string, object?> { ["uuid"] = Guid.NewGuid().ToString() });

    [Theory]
    [InlineData("0.1.0.1240+a25f12d", "0.1.0.1240")]
    [InlineData("0.1.0+a25f12d", "0.1.0.0")]
    [InlineData("0.1.0", "0.1.0.0")]
    [InlineData("0.2.0.3-rc1", "0.2.0.3")]
    [InlineData("garbage", "0.0.0.0")]
    [InlineData("", "0.0.0.0")]
    [InlineData(null, "0.0.0.0")]
    public void A_build_is_four_numbers_without_the_source_revision(string? reported, string build) =>
        Assert.Equal(Version.Parse(build), RollingUpgrade.Parse(reported));

    [Fact]
    public void A_pool_is_upgrading_while_its_hosts_run_different_builds()
    {
        Assert.False(RollingUpgrade.InProgress([Host("a", "0.1.0.7+x"), Host("b", "0.1.0.7+y")]));
        // "0.1.0" (a build before build numbers) and "0.1.0.0" are one build.
        Assert.False(RollingUpgrade.InProgress([Host("a", "0.1.0+x"), Host("b", "0.1.0.0")]));
        Assert.True(RollingUpgrade.InProgress([Host("a", "0.1.0.7"), Host("b", "0.1.0.8")]));
        Assert.True(RollingUpgrade.InProgress([Host("a", "0.1.0.7"), Host("b", null)]));
        Assert.False(RollingUpgrade.InProgress([]));
    }

    [Fact]
    public void A_vm_moves_live_to_a_host_as_new_or_newer_never_to_an_older_one()
    {
        XenObject old = Host("old", "0.1.0.7"), same = Host("same", "0.1.0.7"), newer = Host("new", "0.1.0.8");
        Placement.CheckLiveMigrationCompatible(Vm, old, same);
        Placement.CheckLiveMigrationCompatible(Vm, old, newer);
        var refused = Assert.Throws<XenApiException>(() => Placement.CheckLiveMigrationCompatible(Vm, newer, old));
        Assert.Equal(["NOT_SUPPORTED_DURING_UPGRADE"], refused.ErrorDescription);
    }

    [Fact]
    public void During_an_upgrade_a_vm_starts_only_on_a_host_running_the_newest_build()
    {
        XenObject a = Host("a", "0.1.0.7"), b = Host("b", "0.1.0.8"), c = Host("c", "0.1.0.8");
        // One build: any host.
        Assert.Equal([b, c], RollingUpgrade.MayStartVms([b, c], [b, c]).ToArray());
        Assert.Equal([b, c], RollingUpgrade.MayStartVms([a, b, c], [a, b, c]).ToArray());
        // The newest is the pool's, not the candidates': with the only newest host unavailable, none may take the VM.
        Assert.Empty(RollingUpgrade.MayStartVms([a], [a, b]));
    }

    [Fact]
    public void An_agent_reports_the_version_of_the_package_installed_beside_it()
    {
        var root = Directory.CreateTempSubdirectory("corral-installed.");
        try
        {
            var agent = Directory.CreateDirectory(Path.Combine(root.FullName, "agent")).FullName;
            // Not from a package: the assembly's version.
            Assert.Equal(XenServerVersion.CorralVersion, InstalledVersion.Read(agent));

            File.WriteAllText(Path.Combine(root.FullName, "version"), "0.1.0.1241\n");
            var installed = InstalledVersion.Read(agent);
            Assert.StartsWith("0.1.0.1241", installed, StringComparison.Ordinal);
            Assert.Equal(new Version(0, 1, 0, 1241), RollingUpgrade.Parse(installed));
            Assert.Equal(XenServerVersion.SourceRevision.Length > 0 ? "0.1.0.1241+" + XenServerVersion.SourceRevision : "0.1.0.1241", installed);

            // A file that is not a package version is not believed.
            File.WriteAllText(Path.Combine(root.FullName, "version"), "1.0; rm -rf /\n");
            Assert.Equal(XenServerVersion.CorralVersion, InstalledVersion.Read(agent));
        }
        finally
        {
            root.Delete(recursive: true);
        }
    }
}
