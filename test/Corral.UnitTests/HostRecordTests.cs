using System.Globalization;
using Corral.Agent.Hosting;
using Corral.Agent.Membership;
using Corral.Model;
using Corral.Platform;
using Xunit;

namespace Corral.UnitTests;

/// <summary>
/// What a host record says of its machine and of the version it claims: /proc/cpuinfo parsing, firmware strings, boot
/// time, and version figures that pass the checks XenCenter and Xen Orchestra make; the licence flags and the pool's
/// combination of them; the quorum rule a host shutdown follows.
/// </summary>
public sealed class HostRecordTests
{
    // Two sockets, one core each with two threads: four logical CPUs, as /proc/cpuinfo lists them (trimmed).
    private const string TwoSocketCpuinfo = """
        processor	: 0
        vendor_id	: GenuineIntel
        cpu family	: 6
        model		: 85
        model name	: Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz
        stepping	: 4
        cpu MHz		: 2095.078
        physical id	: 0
        siblings	: 2
        core id		: 0
        cpu cores	: 1
        flags		: fpu vme de pse tsc msr pae mce cx8 apic vmx

        processor	: 1
        vendor_id	: GenuineIntel
        cpu family	: 6
        model		: 85
        model name	: Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz
        stepping	: 4
        cpu MHz		: 2100.000
        physical id	: 0
        siblings	: 2
        core id		: 0
        cpu cores	: 1
        flags		: fpu vme de pse tsc msr pae mce cx8 apic vmx

        processor	: 2
        vendor_id	: GenuineIntel
        cpu family	: 6
        model		: 85
        model name	: Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz
        stepping	: 4
        cpu MHz		: 2095.078
        physical id	: 1
        siblings	: 2
        core id		: 0
        cpu cores	: 1
        flags		: fpu vme de pse tsc msr pae mce cx8 apic vmx

        processor	: 3
        vendor_id	: GenuineIntel
        cpu family	: 6
        model		: 85
        model name	: Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz
        stepping	: 4
        cpu MHz		: 2095.078
        physical id	: 1
        siblings	: 2
        core id		: 0
        cpu cores	: 1
        flags		: fpu vme de pse tsc msr pae mce cx8 apic vmx

        """;

    [Fact]
    public void Cpuinfo_gives_xapis_cpu_info_summary()
    {
        var cpus = CpuInfo.Parse(TwoSocketCpuinfo);
        var summary = cpus.Summary(numaNodes: 2);

        Assert.Equal(4, cpus.CpuCount);
        Assert.Equal("4", summary["cpu_count"]);
        Assert.Equal("2", summary["socket_count"]);
        Assert.Equal("2", summary["threads_per_core"]);
        Assert.Equal("2", summary["nr_nodes"]);
        Assert.Equal("GenuineIntel", summary["vendor"]);
        Assert.Equal("2095.078", summary["speed"]);
        Assert.Equal("Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz", summary["modelname"]);
        Assert.Equal("6", summary["family"]);
        Assert.Equal("85", summary["model"]);
        Assert.Equal("4", summary["stepping"]);
        Assert.Equal("fpu vme de pse tsc msr pae mce cx8 apic vmx", summary["flags"]);
        Assert.Equal([0, 1, 2, 3], cpus.Cpus.Select(c => c.Number));
        Assert.Equal("2100.000", cpus.Cpus[1].Speed);
    }

    [Fact]
    public void Cpuinfo_without_topology_lines_counts_one_socket_one_thread()
    {
        var cpus = CpuInfo.Parse("processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu svm\n\nprocessor\t: 1\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu svm\n");
        var summary = cpus.Summary(numaNodes: 0);

        Assert.Equal("2", summary["cpu_count"]);
        Assert.Equal("1", summary["socket_count"]);
        Assert.Equal("1", summary["threads_per_core"]);
        Assert.Equal("1", summary["nr_nodes"]); // a machine always has a node
        Assert.Equal("", summary["speed"]); // no "cpu MHz" line: nothing made up
    }

    [Fact]
    public void This_machines_cpuinfo_parses()
    {
        var cpus = CpuInfo.Read();
        Assert.True(cpus.CpuCount >= 1);
        Assert.Equal(Enumerable.Range(0, cpus.CpuCount), cpus.Cpus.Select(c => c.Number).Order());
        Assert.All(cpus.Cpus, c => Assert.False(string.IsNullOrEmpty(c.Vendor)));
    }

    [Fact]
    public void A_host_cpu_record_takes_whole_mhz_and_numeric_family_and_model()
    {
        var fields = HostRegistration.CpuFields(CpuInfo.Parse(TwoSocketCpuinfo).Cpus[2], "OpaqueRef:h");
        Assert.Equal(2L, fields["number"]);
        Assert.Equal(2095L, fields["speed"]);
        Assert.Equal(6L, fields["family"]);
        Assert.Equal(85L, fields["model"]);
        Assert.Equal("4", fields["stepping"]);
        Assert.Equal("OpaqueRef:h", fields["host"]);
    }

    [Fact]
    public void Firmware_strings_use_xapis_keys_and_blank_what_is_unknown()
    {
        var directory = Directory.CreateTempSubdirectory("corral-dmi-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(directory, "bios_vendor"), "SeaBIOS\n");
            File.WriteAllText(Path.Combine(directory, "sys_vendor"), "Not Specified\n");
            File.WriteAllText(Path.Combine(directory, "product_name"), "Standard PC (Q35 + ICH9, 2009)\u0001\n");
            var strings = MachineFacts.ReadBiosStrings(directory);

            Assert.Equal(MachineFacts.BiosFiles.Select(f => f.Key).Order(), strings.Keys.Order());
            Assert.Equal("SeaBIOS", strings["bios-vendor"]);
            Assert.Equal("", strings["system-manufacturer"]); // "Not Specified", as xapi blanks it
            Assert.Equal("Standard PC (Q35 + ICH9, 2009)", strings["system-product-name"]); // unprintables dropped
            Assert.Equal("", strings["system-serial-number"]); // missing (or root's only)
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void Boot_time_and_initiator_name_are_read_from_their_files()
    {
        Assert.Equal(DateTime.UnixEpoch.AddSeconds(1740148082), MachineFacts.ParseBootTime("cpu  1 2 3\nbtime 1740148082\nprocesses 12\n"));
        Assert.Equal(DateTime.UnixEpoch, MachineFacts.ParseBootTime("cpu 1 2 3\n"));
        Assert.Equal("iqn.2004-10.com.ubuntu:01:abc", MachineFacts.ParseInitiatorName("## comment\nInitiatorName=iqn.2004-10.com.ubuntu:01:abc\n"));
        Assert.Null(MachineFacts.ParseInitiatorName("## nothing here\n"));
    }

    [Fact]
    public void Epoch_seconds_are_written_as_xapi_writes_them()
    {
        Assert.Equal("1740148082.", HostRegistration.EpochSeconds(DateTime.UnixEpoch.AddSeconds(1740148082.7)));
    }

    [Fact]
    public void An_iqn_is_the_machines_or_made_as_xenservers_installer_makes_it()
    {
        var facts = new MachineFacts(CpuInfo.Parse(TwoSocketCpuinfo), new Dictionary<string, string>(), false, 1, "6.1.0", DateTime.UnixEpoch, null, "lab.corral.test");
        Assert.Equal("iqn.2026-11.test.corral.lab:6f1c2b3a", HostRegistration.IscsiIqn(facts, "6f1c2b3a-0000-4000-8000-000000000001", new DateTime(2026, 11, 30, 0, 0, 0, DateTimeKind.Utc)));
        Assert.StartsWith("iqn.2026-11.com.example:", HostRegistration.IscsiIqn(facts with { DnsDomain = "" }, "6f1c2b3a-0", new DateTime(2026, 11, 30, 0, 0, 0, DateTimeKind.Utc)));
        Assert.Equal("iqn.1993-08.org.debian:01:x", HostRegistration.IscsiIqn(facts with { IscsiInitiatorName = "iqn.1993-08.org.debian:01:x" }, "u", DateTime.UtcNow));
    }

    /// <summary>XenCenter's and Xen Orchestra's checks (docs/architecture.md, "What clients are told"), applied to the figures.</summary>
    [Fact]
    public void Version_figures_pass_the_clients_checks()
    {
        var sv = XenServerVersion.SoftwareVersion("6.1.0-28-amd64", "0.1.0.1240+a25f12d").ToDictionary(kv => kv.Key, kv => (string)kv.Value!);

        // XenCenter: API >= 2.6 and not 2.7; brand its own or its legacy one; xencenter_min within the last open-source
        // XenCenter's 2.20; every host's platform_version >= 2.9.50 (and 3.2.50 for its XenServer 8 paths).
        Assert.True(XenServerVersion.ApiVersionMajor == 2 && XenServerVersion.ApiVersionMinor >= 6 && XenServerVersion.ApiVersionMinor != 7);
        Assert.Equal("XenSource", XenServerVersion.ApiVersionVendor);
        Assert.Contains(sv["product_brand"], new[] { "XenServer", "Citrix Hypervisor" });
        Assert.True(ApiVersion(sv["xencenter_min"]) <= new Version(2, 20));
        Assert.True(ApiVersion(sv["xencenter_max"]) >= ApiVersion(sv["xencenter_min"]));
        Assert.Equal(new Version(2, 21), ApiVersion(sv["xencenter_max"]));
        Assert.True(Version.Parse(sv["platform_version"]) >= new Version(3, 2, 50));
        Assert.True(Version.Parse(sv["xapi_build"]) >= new Version(23, 27, 0)); // above every xapi version XenCenter gates on
        Assert.False(string.IsNullOrEmpty(sv["db_schema"]));

        // Xen Orchestra: semver product_version >= 8.3.0 for its current screens, and a valid x.y.z platform_version.
        Assert.True(Version.Parse(sv["product_version"]) >= new Version(8, 3, 0));
        Assert.Equal(3, sv["platform_version"].Split('.').Length);

        // What the machine and this build say; no supplemental pack is claimed; nothing empty.
        Assert.Equal("6.1.0-28-amd64", sv["linux"]);
        Assert.Equal("bridge", sv["network_backend"]);
        Assert.Equal("0.1.0.1240+a25f12d", sv[XenServerVersion.CorralVersionKey]);
        Assert.Equal("corral-0.1.0.1240", sv["build_number"]);
        Assert.StartsWith("0.1.0", XenServerVersion.CorralVersion);
        Assert.Matches(@"^\d{4}-\d{2}-\d{2}$", sv["date"]);
        Assert.DoesNotContain(sv.Keys, k => k.Contains(':', StringComparison.Ordinal));
        Assert.All(sv.Values, v => Assert.False(string.IsNullOrEmpty(v)));
        foreach (var key in new[] { "product_version_text", "product_version_text_short", "platform_name", "build_number", "xapi", "hostname" })
        {
            Assert.True(sv.ContainsKey(key), key);
        }
    }

    /// <summary>As XenCenter reads an API version string: exactly "major.minor".</summary>
    private static Version ApiVersion(string text)
    {
        var parts = text.Split('.');
        Assert.Equal(2, parts.Length);
        return new Version(int.Parse(parts[0], CultureInfo.InvariantCulture), int.Parse(parts[1], CultureInfo.InvariantCulture));
    }

    [Fact]
    public void Licence_flags_name_every_feature_explicitly_and_truthfully()
    {
        var flags = HostLicense.LicenseParams().ToDictionary(kv => kv.Key, kv => (string)kv.Value!);

        Assert.All(flags.Values, v => Assert.Contains(v, new[] { "true", "false" }));
        // What Corral does: pools, shared storage, live and storage migration, HA, starting VMs.
        Assert.Equal("false", flags["restrict_pooling"]);
        Assert.Equal("false", flags["restrict_pool_attached_storage"]);
        Assert.Equal("false", flags["restrict_xen_motion"]);
        Assert.Equal("false", flags["restrict_storage_xen_motion"]);
        Assert.Equal("true", flags["enable_xha"]);
        Assert.Equal("false", flags["restrict_vm_start"]);
        Assert.Equal("false", flags["restrict_vtpm"]);
        Assert.Equal("false", flags["restrict_set_vcpus_number_live"]);
        // What it does not: certificate verification (so XenCenter does not offer to turn it on), zstd export.
        Assert.Equal("true", flags["restrict_certificate_verification"]);
        Assert.Equal("true", flags["restrict_zstd_export"]);
        // Every key xapi's features.ml knows and every one XenCenter reads.
        foreach (var key in new[] { "restrict_vlan", "restrict_dmc", "restrict_vmss", "restrict_gpu", "restrict_historical_performance", "restrict_rpu",
                     "restrict_corosync", "restrict_vm_groups", "restrict_updates", "restrict_xcm", "restrict_read_caching", "restrict_ssl_legacy_switch",
                     "platform_filter", "regular_nag_dialog" })
        {
            Assert.True(flags.ContainsKey(key), key);
        }
    }

    [Fact]
    public void The_pool_has_a_feature_only_if_every_host_has_it()
    {
        var corral = HostLicense.LicenseParams().ToDictionary(kv => kv.Key, kv => (string)kv.Value!);
        var older = new Dictionary<string, string>(corral) { ["restrict_storage_xen_motion"] = "true", ["enable_xha"] = "false" };
        older.Remove("restrict_xen_motion"); // a host that does not name a flag does not have the feature

        var alone = HostLicense.PoolRestrictions([corral]);
        var mixed = HostLicense.PoolRestrictions([corral, older]);

        Assert.Equal(corral, alone.ToDictionary(kv => kv.Key, kv => (string)kv.Value!));
        Assert.Equal("true", mixed["restrict_storage_xen_motion"]);
        Assert.Equal("true", mixed["restrict_xen_motion"]);
        Assert.Equal("false", mixed["enable_xha"]);
        Assert.Equal("false", mixed["restrict_pooling"]);
        Assert.Equal("false", HostLicense.PoolRestrictions([])["enable_xha"]);
    }

    [Fact]
    public void A_local_clock_reading_has_no_zone_on_the_wire()
    {
        var utc = new DateTime(2026, 11, 30, 10, 15, 0, DateTimeKind.Utc);
        Assert.Equal("20261130T10:15:00Z", XenDateTime.Format(utc));
        Assert.Equal("20261130T10:15:00", XenDateTime.Format(new DateTime(2026, 11, 30, 10, 15, 0, DateTimeKind.Local)));
        Assert.Equal(DateTimeKind.Local, XenDateTime.ParseKeepingLocal("20261130T10:15:00").Kind);
        Assert.Equal(utc, XenDateTime.ParseKeepingLocal("20261130T10:15:00Z"));
    }

    [Theory]
    [InlineData(3, 2, 2, true)] // three voters, the two others up: two of three remain
    [InlineData(3, 1, 2, false)] // one other voter already down: only one would remain
    [InlineData(2, 1, 1, false)] // a two-voter pool cannot lose either
    [InlineData(1, 0, 0, true)] // a pool of one going down takes nobody's database away
    [InlineData(5, 3, 4, true)]
    [InlineData(5, 2, 4, false)]
    public void A_host_goes_down_only_if_the_pool_database_keeps_its_quorum(int voters, int othersUp, int otherLiveHosts, bool allowed) =>
        Assert.Equal(allowed, EtcdQuorum.Verdict(voters, othersUp, otherLiveHosts) is null);
}
