using System.Text.RegularExpressions;

namespace Corral.Packaging.Tests;

/// <summary>What <c>dpkg-deb</c> and <c>systemd-analyze</c> say of the package, as an administrator would ask them.</summary>
[Collection(PackageCollection.Name)]
public sealed class PackageContentsTests(DebianPackage package)
{
    /// <summary>What the agent, the fence daemon and xe need on the host, as the lab installs them (./lab install_packages).</summary>
    private static readonly string[] Needed =
        ["qemu-system-x86", "qemu-utils", "qemu-block-extra", "etcd-server", "etcd-client", "isc-dhcp-client", "ovmf", "swtpm", "sanlock", "iproute2", "libnfs13", "libiscsi7", "libiscsi-bin", "smbnetfs"];

    [Fact]
    public async Task Its_info_names_the_package_its_version_and_the_Debian_packages_it_depends_on()
    {
        var (code, info) = await Processes.RunAsync("dpkg-deb", ["-I", package.Deb]);
        Assert.True(code == 0, info);
        Assert.Contains(" Package: corral\n", info, StringComparison.Ordinal);
        Assert.Matches($@" Version: {Regex.Escape(DebianPackage.RepositoryVersion())}\.[0-9]+\n", info);
        // The version the installed agent reports is the package's.
        var versionFile = File.ReadAllText(Path.Combine(package.Root, "usr", "lib", "corral", "version")).Trim();
        Assert.Contains($" Version: {versionFile}\n", info, StringComparison.Ordinal);
        var (_, arch) = await Processes.RunAsync("dpkg", ["--print-architecture"]);
        Assert.Contains($" Architecture: {arch.Trim()}\n", info, StringComparison.Ordinal);

        var (_, depends) = await Processes.RunAsync("dpkg-deb", ["-f", package.Deb, "Depends"]);
        var alternatives = depends.Trim().Split(',').Select(d => d.Split('|').Select(a => a.Trim()).ToArray()).ToList();
        Assert.All(Needed, name => Assert.Contains(alternatives, a => a.Contains(name)));
        // Each dependency is a real Debian package: one of its alternatives is installed here (run-tests installs them).
        foreach (var choice in alternatives)
        {
            var installed = false;
            foreach (var name in choice)
            {
                var (status, _) = await Processes.RunAsync("dpkg-query", ["-W", "-f=${Status}", name]);
                installed |= status == 0;
            }

            Assert.True(installed, $"no package of '{string.Join(" | ", choice)}' is known to dpkg here");
        }
    }

    [Fact]
    public async Task Its_contents_are_xe_the_units_the_configuration_and_the_self_contained_daemons_all_root_owned()
    {
        var (code, listing) = await Processes.RunAsync("dpkg-deb", ["-c", package.Deb]);
        Assert.True(code == 0, listing);
        var entries = listing.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .ToDictionary(f => f[5], f => (Mode: f[0], Owner: f[1]), StringComparer.Ordinal);
        foreach (var (path, mode) in new[]
        {
            ("./usr/bin/xe", "-rwxr-xr-x"),
            ("./lib/systemd/system/corral-agent.service", "-rw-r--r--"),
            ("./lib/systemd/system/corral-fenced.service", "-rw-r--r--"),
            ("./usr/lib/tmpfiles.d/corral.conf", "-rw-r--r--"),
            ("./etc/corral/agent.conf", "-rw-------"), // it holds the initial root password
            ("./etc/corral/fenced.conf", "-rw-r--r--"),
            ("./usr/lib/corral/agent/corral-agent", "-rwxr-xr-x"),
            ("./usr/lib/corral/agent/libcoreclr.so", "-rw-r--r--"), // the runtime beside it: self-contained
            ("./usr/lib/corral/agent/dhclient-script", "-rwxr-xr-x"), // dhclient runs it for a PIF configured by DHCP
            ("./usr/lib/corral/fenced/corral-fenced", "-rwxr-xr-x"),
            ("./usr/lib/corral/fenced/libcoreclr.so", "-rw-r--r--"),
            ("./usr/lib/corral/version", "-rw-r--r--"), // what the agent reports, and a rolling upgrade compares
        })
        {
            Assert.True(entries.ContainsKey(path), $"{path} is not in the package:\n{listing}");
            Assert.Equal((path, mode), (path, entries[path].Mode));
        }

        Assert.All(entries, e => Assert.Equal((e.Key, "root/root"), (e.Key, e.Value.Owner)));
        Assert.DoesNotContain(entries.Keys, p => p.EndsWith(".pdb", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Every_file_in_etc_is_a_conffile_so_an_upgrade_keeps_the_administrators_edits()
    {
        var (code, conffiles) = await Processes.RunAsync("dpkg-deb", ["-I", package.Deb, "conffiles"]);
        Assert.True(code == 0, conffiles);
        var inEtc = Directory.EnumerateFiles(Path.Combine(package.Root, "etc"), "*", SearchOption.AllDirectories)
            .Select(f => "/" + Path.GetRelativePath(package.Root, f)).Order().ToArray();
        Assert.Equal(["/etc/corral/agent.conf", "/etc/corral/fenced.conf"], inEtc);
        Assert.Equal(inEtc, conffiles.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Trim()).Order().ToArray());
    }

    [Fact]
    public async Task Its_units_pass_systemd_analyze_verify_in_the_unpacked_package()
    {
        // The unpacked package plus this machine's own units (sanlock.service, etcd.service, the targets), which the
        // package's units name; verify checks, inside that root, that each ExecStart is there and executable.
        var units = Path.Combine(package.Root, "lib", "systemd", "system");
        foreach (var unit in Directory.EnumerateFileSystemEntries("/lib/systemd/system"))
        {
            var copy = Path.Combine(units, Path.GetFileName(unit));
            if (!Path.Exists(copy) && File.Exists(unit) && new FileInfo(unit).LinkTarget is null)
            {
                File.Copy(unit, copy);
            }
        }

        var (code, output) = await Processes.RunAsync("systemd-analyze", ["verify", $"--root={package.Root}", "corral-agent.service", "corral-fenced.service"]);
        Assert.True(code == 0, $"systemd-analyze verify failed:\n{output}");
        // Warnings (an unknown key, a bad value) do not fail verify; any about the package's units does here.
        Assert.DoesNotContain("corral", output, StringComparison.Ordinal);
    }

    [Fact]
    public void The_agents_unit_keeps_its_etcd_member_and_VMs_through_a_restart_and_starts_after_its_fence_daemon()
    {
        var unit = File.ReadAllLines(Path.Combine(package.Root, "lib", "systemd", "system", "corral-agent.service"));
        string[] Values(string key) => unit.Where(l => l.StartsWith(key + "=", StringComparison.Ordinal))
            .SelectMany(l => l[(key.Length + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToArray();
        Assert.Equal(["process"], Values("KillMode"));
        Assert.Equal(["on-failure"], Values("Restart"));
        Assert.Equal(["78"], Values("RestartPreventExitStatus"));
        Assert.Equal(["/etc/corral/agent.conf"], Values("EnvironmentFile"));
        Assert.Contains("sanlock.service", Values("Requires"));
        // Wanted, not required: a restart of the fence daemon (an upgrade's first step) must not restart the agent with it.
        Assert.Contains("corral-fenced.service", Values("Wants"));
        Assert.DoesNotContain("corral-fenced.service", Values("Requires"));
        Assert.Superset(new HashSet<string> { "corral-fenced.service", "sanlock.service", "network-online.target" }, Values("After").ToHashSet());
        Assert.Contains("etcd.service", Values("Conflicts"));
    }

    [Fact]
    public async Task Its_maintainer_scripts_are_executable_shell_scripts_that_parse()
    {
        foreach (var script in new[] { "postinst", "prerm", "postrm" })
        {
            var path = Path.Combine(package.Root, "DEBIAN", script);
            var (code, output) = await Processes.RunAsync("test", ["-x", path]);
            Assert.True(code == 0, $"{script} is not executable");
            (code, output) = await Processes.RunAsync("sh", ["-n", path]);
            Assert.True(code == 0, $"{script}: {output}");
        }
    }
}
