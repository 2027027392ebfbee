namespace Corral.Packaging.Tests;

/// <summary>
/// The package's maintainer scripts run as dpkg runs them for a root of its own (<c>DPKG_ROOT</c>): a temporary root
/// holding the package's units and configuration and Debian's etcd.service, which Debian's systemctl (offline, with
/// <c>--root</c>) enables and disables there. The running systemd is never touched.
/// </summary>
[Collection(PackageCollection.Name)]
public sealed class MaintainerScriptsTests(DebianPackage package) : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("corral-dpkg-root.").FullName;

    private string Wants => Path.Combine(_root, "etc", "systemd", "system", "multi-user.target.wants");

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public async Task A_first_install_enables_both_units_without_starting_them_and_disables_Debians_etcd()
    {
        Unpack();
        await AssertRunsAsync("systemctl", $"--root={_root}", "enable", "etcd.service");

        var said = await ScriptAsync("postinst", "configure");
        Assert.True(File.Exists(Path.Combine(Wants, "corral-agent.service")), "corral-agent.service not enabled");
        Assert.True(File.Exists(Path.Combine(Wants, "corral-fenced.service")), "corral-fenced.service not enabled");
        Assert.False(File.Exists(Path.Combine(Wants, "etcd.service")), "Debian's etcd.service still enabled");
        Assert.Contains("disabling Debian's etcd.service", said, StringComparison.Ordinal);
        Assert.Contains("/etc/corral/agent.conf, then: systemctl start corral-agent", said, StringComparison.Ordinal);

        // An upgrade leaves an administrator's choices alone: a re-enabled etcd stays enabled.
        await AssertRunsAsync("systemctl", $"--root={_root}", "enable", "etcd.service");
        said = await ScriptAsync("postinst", "configure", "0.0.9");
        Assert.True(File.Exists(Path.Combine(Wants, "etcd.service")), "an upgrade disabled etcd.service again");
        Assert.DoesNotContain("systemctl start corral-agent", said, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_remove_disables_the_units_and_keeps_configuration_and_state_which_only_a_purge_deletes()
    {
        Unpack();
        var state = Path.Combine(_root, "var", "lib", "corral");
        Directory.CreateDirectory(state);
        await File.WriteAllTextAsync(Path.Combine(state, "host-identity.json"), "{}");
        await ScriptAsync("postinst", "configure");
        Assert.True(File.Exists(Path.Combine(Wants, "corral-agent.service")));

        await ScriptAsync("prerm", "remove");
        Assert.False(File.Exists(Path.Combine(Wants, "corral-agent.service")), "corral-agent.service still enabled after remove");
        Assert.False(File.Exists(Path.Combine(Wants, "corral-fenced.service")), "corral-fenced.service still enabled after remove");
        await ScriptAsync("postrm", "remove");
        Assert.True(File.Exists(Path.Combine(_root, "etc", "corral", "agent.conf")), "remove deleted the configuration");
        Assert.True(File.Exists(Path.Combine(state, "host-identity.json")), "remove deleted the host's state");

        await ScriptAsync("postrm", "purge");
        Assert.False(Directory.Exists(Path.Combine(_root, "etc", "corral")), "purge kept /etc/corral");
        Assert.False(Directory.Exists(state), "purge kept /var/lib/corral");
    }

    // What dpkg would have unpacked that the scripts act on: the units (and Debian's etcd.service), the configuration.
    private void Unpack()
    {
        var units = Path.Combine(_root, "lib", "systemd", "system");
        Directory.CreateDirectory(units);
        foreach (var unit in new[] { "corral-agent.service", "corral-fenced.service" })
        {
            File.Copy(Path.Combine(package.Root, "lib", "systemd", "system", unit), Path.Combine(units, unit));
        }

        File.Copy("/lib/systemd/system/etcd.service", Path.Combine(units, "etcd.service"));
        Directory.CreateDirectory(Path.Combine(_root, "etc", "corral"));
        foreach (var conf in Directory.GetFiles(Path.Combine(package.Root, "etc", "corral")))
        {
            File.Copy(conf, Path.Combine(_root, "etc", "corral", Path.GetFileName(conf)));
        }
    }

    private async Task<string> ScriptAsync(string script, params string[] args)
    {
        var (code, output) = await Processes.RunAsync("sh", [Path.Combine(package.Root, "DEBIAN", script), .. args],
            new Dictionary<string, string> { ["DPKG_ROOT"] = _root });
        Assert.True(code == 0, $"{script} {string.Join(' ', args)} ended with {code}:\n{output}");
        return output;
    }

    private static async Task AssertRunsAsync(string file, params string[] args)
    {
        var (code, output) = await Processes.RunAsync(file, args);
        Assert.True(code == 0, $"{file} {string.Join(' ', args)}: {output}");
    }
}
