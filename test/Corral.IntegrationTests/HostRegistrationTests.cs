using Corral.Agent.Hosting;
using Corral.Api;
using Corral.Api.Dispatch;
using Corral.Api.Sessions;
using Corral.Model;
using Corral.Platform;
using Corral.PoolDatabase;
using Corral.PoolDatabase.Etcd;
using Corral.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>
/// The agent's registration against a real etcd: the host record with what clients index (version figures, CPUs,
/// licence flags, boot and agent start times), one <c>host_cpu</c> per logical CPU created and later corrected, what an
/// administrator set kept, a host back from a shutdown enabled again, and the pool's figures summed over its hosts.
/// </summary>
public sealed class HostRegistrationTests : IAsyncLifetime
{
    private const string FourCpus = """
        processor	: 0
        vendor_id	: AuthenticAMD
        cpu family	: 25
        model		: 1
        model name	: AMD EPYC 7313 16-Core Processor
        stepping	: 1
        cpu MHz		: 3000.000
        physical id	: 0
        siblings	: 4
        cpu cores	: 2
        flags		: fpu vme svm

        processor	: 1
        vendor_id	: AuthenticAMD
        cpu family	: 25
        model		: 1
        model name	: AMD EPYC 7313 16-Core Processor
        stepping	: 1
        cpu MHz		: 3000.000
        physical id	: 0
        siblings	: 4
        cpu cores	: 2
        flags		: fpu vme svm

        processor	: 2
        vendor_id	: AuthenticAMD
        cpu family	: 25
        model		: 1
        model name	: AMD EPYC 7313 16-Core Processor
        stepping	: 1
        cpu MHz		: 3000.000
        physical id	: 0
        siblings	: 4
        cpu cores	: 2
        flags		: fpu vme svm

        processor	: 3
        vendor_id	: AuthenticAMD
        cpu family	: 25
        model		: 1
        model name	: AMD EPYC 7313 16-Core Processor
        stepping	: 1
        cpu MHz		: 3000.000
        physical id	: 0
        siblings	: 4
        cpu cores	: 2
        flags		: fpu vme svm
        """;

    // The host the API runs on (and logs in at): the first host registered, so the pool's master.
    private readonly HostIdentity _master = NewIdentity();
    private EtcdFixture _etcd = null!;
    private ServiceProvider _services = null!;
    private IPoolDatabase _db = null!;
    private ApiDispatcher _api = null!;
    private string _session = "";

    public async Task InitializeAsync()
    {
        _etcd = await EtcdFixture.StartAsync();
        var services = new ServiceCollection();
        services.AddLogging(l => l.AddConsole().SetMinimumLevel(LogLevel.Warning));
        services.AddEtcdPoolDatabase(o => o.Endpoints = _etcd.Endpoint);
        services.AddSingleton(SrDrivers.Default);
        services.AddXenApi(o => o.HostRef = _master.Ref);
        _services = services.BuildServiceProvider();
        _db = _services.GetRequiredService<IPoolDatabase>();
        _api = _services.GetRequiredService<ApiDispatcher>();
    }

    public async Task DisposeAsync()
    {
        try
        {
            await _services.DisposeAsync();
        }
        finally
        {
            await _etcd.DisposeAsync();
        }
    }

    private HostRegistration Registration(HostIdentity identity, string name) => new(_db, identity, _services.GetRequiredService<SessionService>(),
        Options.Create(new AgentOptions { HostName = name, Address = "10.78.0.11", InitialRootPassword = "pw", MemoryTotalBytes = 4L << 30 }),
        _services.GetRequiredService<ILogger<HostRegistration>>());

    private static HostIdentity NewIdentity() => new(OpaqueRef.NewUuid(), OpaqueRef.New(), OpaqueRef.New());

    private static MachineFacts Facts(string cpuinfo) => MachineFacts.Read() with { Cpus = CpuInfo.Parse(cpuinfo) };

    private async Task<object?> Call(string method, params object?[] args)
    {
        if (_session.Length == 0)
        {
            _session = (string)(await _api.InvokeAsync("session.login_with_password", ["root", "pw"], "127.0.0.1", default))!;
        }

        return await _api.InvokeAsync(method, [_session, .. args], "127.0.0.1", default);
    }

    private async Task<List<XenObject>> CpusOfAsync(string hostRef) =>
        (await _db.GetAllAsync(XenApi.HostCpu.ClassName, default)).Where(c => c.GetString("host") == hostRef).OrderBy(c => c.GetInt("number")).ToList();

    [Fact]
    public async Task The_host_record_carries_what_clients_index_from_this_machine()
    {
        var identity = _master;
        var facts = MachineFacts.Read();
        var started = new DateTime(2026, 11, 30, 8, 0, 0, DateTimeKind.Utc);
        await Registration(identity, "lab-host1").RegisterAsync(facts, started, powerCycled: false, default);

        // Read through the API, as a client sees it.
        var host = (Dictionary<string, object?>)(await Call("host.get_record", identity.Ref))!;
        var sv = (Dictionary<string, object?>)host["software_version"]!;
        Assert.Equal(2L, host["API_version_major"]);
        Assert.Equal(21L, host["API_version_minor"]);
        Assert.Equal("XenSource", host["API_version_vendor"]);
        Assert.Equal("XenServer", sv["product_brand"]);
        Assert.Equal("8.4.0", sv["product_version"]);
        Assert.Equal("3.4.0", sv["platform_version"]);
        Assert.Equal(facts.KernelRelease, sv["linux"]);
        Assert.Equal("2.20", sv["xencenter_min"]);
        Assert.Equal("lab-host1", host["name_label"]);
        Assert.Equal("lab-host1", host["hostname"]);
        Assert.Equal("10.78.0.11", host["address"]);
        Assert.Equal(true, host["enabled"]);
        Assert.Contains("hvm-3.0-x86_64", (List<object?>)host["capabilities"]!);

        var cpuInfo = (Dictionary<string, object?>)host["cpu_info"]!;
        Assert.Equal(facts.Cpus.CpuCount.ToString(System.Globalization.CultureInfo.InvariantCulture), cpuInfo["cpu_count"]);
        Assert.Equal(facts.Cpus.Cpus[0].Vendor, cpuInfo["vendor"]);
        Assert.Equal(facts.Cpus.Cpus[0].Flags, cpuInfo["flags"]);
        Assert.Equal(facts.Iommu ? "true" : "false", ((Dictionary<string, object?>)host["chipset_info"]!)["iommu"]);
        Assert.Equal(MachineFacts.BiosFiles.Count, ((Dictionary<string, object?>)host["bios_strings"]!).Count);

        var license = (Dictionary<string, object?>)host["license_params"]!;
        Assert.Equal("false", license["restrict_xen_motion"]);
        Assert.Equal("true", license["enable_xha"]);
        Assert.Equal("free", host["edition"]);

        var other = (Dictionary<string, object?>)host["other_config"]!;
        Assert.Equal(HostRegistration.EpochSeconds(facts.BootTimeUtc), other["boot_time"]);
        Assert.Equal("1796025600.", other["agent_start_time"]);
        Assert.StartsWith("iqn.", (string)host["iscsi_iqn"]!);
        Assert.Equal(host["iscsi_iqn"], other["iscsi_iqn"]);
        Assert.Equal(new List<object?> { 0L, 1L }, host["virtual_hardware_platform_versions"]);

        // One host_cpu per logical CPU, linked from the host.
        var hostCpus = (List<object?>)host["host_CPUs"]!;
        Assert.Equal(facts.Cpus.CpuCount, hostCpus.Count);
        var records = (Dictionary<string, object?>)(await Call("host_cpu.get_all_records"))!;
        Assert.Equal(hostCpus.Order().ToList(), records.Keys.Order().Cast<object?>().ToList());
        var first = records.Values.Cast<Dictionary<string, object?>>().Single(r => (long)r["number"]! == 0);
        Assert.Equal(facts.Cpus.Cpus[0].ModelName, first["modelname"]);
        Assert.Equal(identity.Ref, first["host"]);

        // host_metrics: memory as the agent offers it, live once the lease says so (not here).
        var metrics = (Dictionary<string, object?>)(await Call("host_metrics.get_record", host["metrics"]))!;
        Assert.Equal(4L << 30, metrics["memory_total"]);
    }

    [Fact]
    public async Task Host_cpu_records_are_corrected_at_the_next_start_and_what_an_administrator_set_stays()
    {
        var identity = _master;
        var registration = Registration(identity, "h1");
        await registration.RegisterAsync(Facts(FourCpus), DateTime.UtcNow, powerCycled: false, default);
        var before = await CpusOfAsync(identity.Ref);
        Assert.Equal([0L, 1L, 2L, 3L], before.Select(c => c.GetInt("number")));

        // A stray duplicate, an administrator's settings, and an older Corral's vendor string.
        var tx = new PoolTransaction();
        tx.Create(XenApi.HostCpu.Schema, HostRegistration.CpuFields(CpuInfo.Parse(FourCpus).Cpus[0], identity.Ref));
        await _db.CommitAsync(tx, default);
        await Call("host.set_name_label", identity.Ref, "renamed");
        await _db.UpdateAsync([(XenClasses.Host, identity.Ref)], (objs, t) =>
        {
            var h = objs[0].Clone();
            h["iscsi_iqn"] = "iqn.2020-01.test:chosen";
            h["API_version_vendor"] = "Corral";
            h["power_on_mode"] = "lab";
            t.Update(h);
        }, default);

        // The machine now has two CPUs, the second with other flags.
        var blocks = FourCpus.Split("\n\n");
        var twoCpus = blocks[0] + "\n\n" + blocks[1].Replace("flags\t\t: fpu vme svm", "flags\t\t: fpu vme svm avx2", StringComparison.Ordinal);
        await registration.RegisterAsync(Facts(twoCpus), DateTime.UtcNow, powerCycled: false, default);

        var after = await CpusOfAsync(identity.Ref);
        Assert.Equal([0L, 1L], after.Select(c => c.GetInt("number")));
        Assert.Equal(before[0].Ref, after[0].Ref); // unchanged CPUs keep their records
        Assert.Equal(before[1].Ref, after[1].Ref);
        Assert.Equal("fpu vme svm avx2", after[1].GetString("flags"));
        Assert.Equal("2", (await _db.GetAsync(XenClasses.Host, identity.Ref, default)).GetStringMap("cpu_info")["cpu_count"]);

        var host = await _db.GetAsync(XenClasses.Host, identity.Ref, default);
        Assert.Equal("renamed", host.GetString("name_label"));
        Assert.Equal("iqn.2020-01.test:chosen", host.GetString("iscsi_iqn"));
        Assert.Equal("lab", host.GetString("power_on_mode"));
        Assert.Equal("XenSource", host.GetString("API_version_vendor"));
    }

    [Fact]
    public async Task A_host_back_from_a_shutdown_is_enabled_again_a_restarted_one_stays_disabled()
    {
        var identity = NewIdentity();
        var registration = Registration(identity, "h1");
        await registration.RegisterAsync(Facts(FourCpus), DateTime.UtcNow, powerCycled: false, default);
        await _db.UpdateAsync([(XenClasses.Host, identity.Ref)], (objs, t) =>
        {
            var h = objs[0].Clone();
            h["enabled"] = false;
            h["current_operations"] = new Dictionary<string, object?> { ["OpaqueRef:task"] = "shutdown" };
            t.Update(h);
        }, default);

        await registration.RegisterAsync(Facts(FourCpus), DateTime.UtcNow, powerCycled: false, default);
        Assert.False((await _db.GetAsync(XenClasses.Host, identity.Ref, default)).GetBool("enabled"));

        await registration.RegisterAsync(Facts(FourCpus), DateTime.UtcNow, powerCycled: true, default);
        var host = await _db.GetAsync(XenClasses.Host, identity.Ref, default);
        Assert.True(host.GetBool("enabled"));
        Assert.Empty((Dictionary<string, object?>)host["current_operations"]!);
    }

    [Fact]
    public async Task The_pool_sums_its_hosts_cpus_and_restricts_what_any_host_lacks()
    {
        var first = _master;
        var second = NewIdentity();
        await Registration(first, "h1").RegisterAsync(Facts(FourCpus), DateTime.UtcNow, powerCycled: false, default);
        await Registration(second, "h2").RegisterAsync(Facts(FourCpus), DateTime.UtcNow, powerCycled: false, default);

        var pool = (await _db.GetAllAsync(XenClasses.Pool, default)).Single();
        Assert.Equal(first.Ref, pool.GetString("master"));
        var cpuInfo = pool.GetStringMap("cpu_info");
        Assert.Equal("8", cpuInfo["cpu_count"]);
        Assert.Equal("2", cpuInfo["socket_count"]);
        Assert.Equal("AuthenticAMD", cpuInfo["vendor"]);
        var restrictions = pool.GetStringMap("restrictions");
        Assert.Equal(HostLicense.LicenseParams().Count, restrictions.Count);
        Assert.Equal("false", restrictions["restrict_xen_motion"]);
        Assert.Equal("false", restrictions["restrict_vtpm"]);
        Assert.Equal("true", restrictions["restrict_zstd_export"]);
        // Its hosts check one another's certificates from the start (TlsVerificationMethods), as a new XenServer 8 pool.
        Assert.True(pool.GetBool("tls_verification_enabled"));
        Assert.Empty(pool.GetSet("repositories"));

        // A host without live migration (an older Corral, say) takes it from the pool.
        await _db.UpdateAsync([(XenClasses.Host, second.Ref)], (objs, t) =>
        {
            var h = objs[0].Clone();
            var flags = h.GetStringMap("license_params");
            flags["restrict_xen_motion"] = "true";
            h["license_params"] = flags.ToDictionary(kv => kv.Key, kv => (object?)kv.Value);
            t.Update(h);
        }, default);
        await Corral.Api.Pool.PoolRecord.RefreshAsync(_db, default);
        Assert.Equal("true", (await _db.GetAllAsync(XenClasses.Pool, default)).Single().GetStringMap("restrictions")["restrict_xen_motion"]);
    }

    [Fact]
    public async Task The_pool_is_marked_in_a_rolling_upgrade_while_its_hosts_run_different_builds()
    {
        var first = _master;
        var second = NewIdentity();
        await Registration(first, "h1").RegisterAsync(Facts(FourCpus), DateTime.UtcNow, powerCycled: false, default);
        await Registration(second, "h2").RegisterAsync(Facts(FourCpus), DateTime.UtcNow, powerCycled: false, default);
        async Task<Dictionary<string, string>> PoolOtherConfig() => (await _db.GetAllAsync(XenClasses.Pool, default)).Single().GetStringMap("other_config");
        Assert.False((await PoolOtherConfig()).ContainsKey("rolling_upgrade_in_progress"));

        // The second host restarts on a newer package: its record says so, and the pool is in a rolling upgrade.
        async Task Reports(HostIdentity host, string version)
        {
            await _db.UpdateAsync([(XenClasses.Host, host.Ref)], (objs, t) =>
            {
                var h = objs[0].Clone();
                var sv = h.GetStringMap("software_version");
                sv["corral_version"] = version;
                h["software_version"] = sv.ToDictionary(kv => kv.Key, kv => (object?)kv.Value);
                t.Update(h);
            }, default);
            await Corral.Api.Pool.PoolRecord.RefreshAsync(_db, default);
        }

        await Reports(second, "0.1.0.9999+next");
        Assert.Equal("true", (await PoolOtherConfig())["rolling_upgrade_in_progress"]);

        // The first host follows: one build again, the mark goes, and the pool's own other_config keys stay.
        await _db.UpdateAsync([(XenClasses.Pool, (await _db.GetAllAsync(XenClasses.Pool, default)).Single().Ref)], (objs, t) =>
        {
            var p = objs[0].Clone();
            var other = p.GetStringMap("other_config");
            other["an_administrators_key"] = "kept";
            p["other_config"] = other.ToDictionary(kv => kv.Key, kv => (object?)kv.Value);
            t.Update(p);
        }, default);
        await Reports(first, "0.1.0.9999+next");
        var after = await PoolOtherConfig();
        Assert.False(after.ContainsKey("rolling_upgrade_in_progress"));
        Assert.Equal("kept", after["an_administrators_key"]);
    }
}
