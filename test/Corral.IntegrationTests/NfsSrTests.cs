using System.Globalization;
using System.Xml.Linq;
using Corral.Model;
using Corral.PoolDatabase;
using Corral.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>
/// NFS SRs (<c>type=nfs</c>, server and serverpath as XenServer's) on a real userspace NFS server (nfs-ganesha on
/// loopback), run by a real agent's storage handlers over a real etcd: the agent reaches the export only through
/// libnfs and qemu-img's nfs driver, never a kernel mount; what the server holds is checked in its exported directory.
/// </summary>
public sealed class NfsSrTests(AgentFixture pool) : IClassFixture<AgentFixture>, IAsyncLifetime
{
    private NfsRig _nfs = null!;

    public async Task InitializeAsync() => _nfs = await NfsRig.StartAsync();

    public async Task DisposeAsync() => await _nfs.DisposeAsync();

    private static Dictionary<string, object?> Map(params (string Key, string Value)[] pairs) => pairs.ToDictionary(p => p.Key, p => (object?)p.Value);

    private Dictionary<string, object?> Config(string? version = null) => version is null
        ? Map(("server", NfsRig.Server), ("serverpath", _nfs.Export))
        : Map(("server", NfsRig.Server), ("serverpath", _nfs.Export), ("nfsversion", version));

    private async Task<string> NewVdiAsync(string sr, string name) =>
        (string)(await pool.S("VDI.create", new Dictionary<string, object?>
        {
            ["SR"] = sr, ["name_label"] = name, ["name_description"] = name + " disk", ["virtual_size"] = 16L << 20, ["type"] = "user",
        }))!;

    private async Task<string> MyPbdAsync(string sr)
    {
        foreach (var pbd in ((List<object?>)(await pool.S("SR.get_PBDs", sr))!).Cast<string>())
        {
            if ((string)(await pool.S("PBD.get_host", pbd))! == pool.Host.Ref)
            {
                return pbd;
            }
        }

        throw new InvalidOperationException("no PBD on this host");
    }

    private async Task<long> VirtualSizeOnServerAsync(string file)
    {
        var json = await Command.RunAsync("qemu-img", "info", "--output=json", "-U", file);
        return System.Text.Json.JsonDocument.Parse(json).RootElement.GetProperty("virtual-size").GetInt64();
    }

    [Fact]
    public async Task An_nfs_sr_keeps_its_vdis_in_its_directory_on_the_export_through_create_resize_clone_scan_and_destroy()
    {
        var sr = (string)(await pool.S("SR.create", pool.Host.Ref, Config(), 0L, "NFS", "on ganesha", "nfs", "", true, Map()))!;
        var srUuid = (string)(await pool.S("SR.get_uuid", sr))!;
        var srDirectory = Path.Combine(_nfs.ExportDirectory, srUuid);
        Assert.True(Directory.Exists(srDirectory), "the SR is <serverpath>/<sr uuid> on the export");
        Assert.Equal(srUuid, (await SrMetadataFile.ReadAsync(srDirectory, default))!.Sr.Uuid);
        Assert.True((long)(await pool.S("SR.get_physical_size", sr))! > 0);
        var pbd = await MyPbdAsync(sr);
        Assert.True((bool)(await pool.S("PBD.get_currently_attached", pbd))!);
        Assert.Equal(Config(), (Dictionary<string, object?>)(await pool.S("PBD.get_device_config", pbd))!);

        var vdi = await NewVdiAsync(sr, "data");
        var vdiUuid = (string)(await pool.S("VDI.get_uuid", vdi))!;
        var file = Path.Combine(srDirectory, vdiUuid + ".qcow2");
        Assert.Equal(vdiUuid + ".qcow2", await pool.S("VDI.get_location", vdi));
        Assert.Equal(16L << 20, await VirtualSizeOnServerAsync(file));

        await pool.S("VDI.resize", vdi, 32L << 20);
        Assert.Equal(32L << 20, await pool.S("VDI.get_virtual_size", vdi));
        Assert.Equal(32L << 20, await VirtualSizeOnServerAsync(file));
        Assert.Equal(ErrorCodes.VdiTooSmall, (await pool.Fails("VDI.resize", vdi, 8L << 20)).Code);

        var clone = (string)(await pool.S("VDI.clone", vdi, Map()))!;
        var cloneFile = Path.Combine(srDirectory, (string)(await pool.S("VDI.get_uuid", clone))! + ".qcow2");
        Assert.Equal(32L << 20, await VirtualSizeOnServerAsync(cloneFile));
        Assert.Empty(Directory.GetFiles(srDirectory, "*.partial"));

        // A volume put on the server by hand is found by a scan; one removed by hand is marked missing.
        var stray = Guid.NewGuid().ToString();
        await Command.RunAsync("qemu-img", "create", "-q", "-f", "qcow2", Path.Combine(srDirectory, stray + ".qcow2"), (4L << 20).ToString(CultureInfo.InvariantCulture));
        File.Delete(cloneFile);
        await pool.S("SR.scan", sr);
        var found = (string)(await pool.S("VDI.get_by_uuid", stray))!;
        Assert.Equal(4L << 20, await pool.S("VDI.get_virtual_size", found));
        Assert.True((bool)(await pool.S("VDI.get_missing", clone))!);

        await pool.S("VDI.destroy", found);
        Assert.False(File.Exists(Path.Combine(srDirectory, stray + ".qcow2")));
        Assert.Equal([ErrorCodes.SrNotEmpty], (await FailsDestroyAsync(sr, pbd)).ErrorDescription);

        await pool.S("PBD.plug", pbd);
        await pool.S("VDI.destroy", vdi);
        await pool.S("VDI.destroy", clone); // its volume is gone already
        await pool.S("PBD.unplug", pbd);
        await pool.S("SR.destroy", sr);
        Assert.False(Directory.Exists(srDirectory), "SR.destroy removes the SR's directory from the export");
    }

    private async Task<XenApiException> FailsDestroyAsync(string sr, string pbd)
    {
        await pool.S("PBD.unplug", pbd);
        return await pool.Fails("SR.destroy", sr);
    }

    /// <summary>
    /// A host joining the pool (here a host record made for it, whose agent starts) gets a PBD of the pool's shared NFS
    /// SRs, attached when the export takes its write from that host, and unattached, with the reason logged, when not.
    /// </summary>
    [Fact]
    public async Task A_joining_host_plugs_the_pools_nfs_srs_it_reaches()
    {
        var sr = (string)(await pool.S("SR.create", pool.Host.Ref, Config(), 0L, "NFS joined", "", "nfs", "user", true, Map()))!;
        // An SR of the pool whose export this host cannot mount (recorded as SR.introduce and PBD.create leave it).
        var unreachable = new PoolTransaction();
        var gone = unreachable.Create(XenClasses.SRSchema, new Dictionary<string, object?>
        {
            ["uuid"] = Guid.NewGuid().ToString(), ["name_label"] = "NFS gone", ["type"] = "nfs", ["shared"] = true,
        });
        var gonePbd = unreachable.Create(XenClasses.PBDSchema, new Dictionary<string, object?>
        {
            ["host"] = pool.Host.Ref, ["SR"] = gone.Ref,
            ["device_config"] = new Dictionary<string, object?> { ["server"] = NfsRig.Server, ["serverpath"] = "/no/such/export" },
        });
        await pool.Database.CommitAsync(unreachable, default);

        var joining = await NewHostAsync("joining");
        var plugs = new Corral.Agent.Storage.SharedSrPlugs(pool.Database, joining, pool.Services.GetRequiredService<SrDrivers>(),
            pool.Services.GetRequiredService<IShareMounts>(), NullLogger<Corral.Agent.Storage.SharedSrPlugs>.Instance);
        await plugs.PlugAllAsync(default);
        await plugs.PlugAllAsync(default); // once per SR and host

        var pbds = (await pool.Database.GetAllAsync(XenClasses.PBD, default)).Where(p => p.Get(XenApi.PBD.Host) == joining.Ref).ToList();
        var joined = Assert.Single(pbds, p => p.Get(XenApi.PBD.SR) == sr);
        Assert.True(joined.Get(XenApi.PBD.CurrentlyAttached));
        Assert.Equal(Config(), joined.Get(XenApi.PBD.DeviceConfig).ToDictionary(kv => kv.Key, kv => (object?)kv.Value));
        Assert.False(Assert.Single(pbds, p => p.Get(XenApi.PBD.SR) == gone.Ref).Get(XenApi.PBD.CurrentlyAttached));

        // The joining host has no agent here to unplug its PBDs: it leaves as host.destroy takes a host's records.
        var leave = new PoolTransaction();
        pbds.ForEach(leave.Delete);
        leave.Delete(await pool.Database.GetAsync(XenClasses.Host, joining.Ref, default));
        leave.Delete(await pool.Database.GetAsync(XenClasses.HostMetrics, joining.MetricsRef, default));
        leave.Delete(await pool.Database.GetAsync(XenClasses.PBD, gonePbd.Ref, default));
        leave.Delete(await pool.Database.GetAsync(XenClasses.SR, gone.Ref, default));
        await pool.Database.CommitAsync(leave, default);
        await pool.S("PBD.unplug", await MyPbdAsync(sr));
        await pool.S("SR.destroy", sr);
    }

    private async Task<Corral.Agent.Hosting.HostIdentity> NewHostAsync(string name)
    {
        var tx = new PoolTransaction();
        var metrics = tx.Create(XenClasses.HostMetricsSchema);
        var host = tx.Create(XenClasses.HostSchema, new Dictionary<string, object?>
        {
            ["uuid"] = Guid.NewGuid().ToString(), ["name_label"] = name, ["metrics"] = metrics.Ref, ["enabled"] = true,
        });
        await pool.Database.CommitAsync(tx, default);
        return new Corral.Agent.Hosting.HostIdentity(host.Uuid, host.Ref, metrics.Ref);
    }

    [Fact]
    public async Task An_nfs_sr_forgotten_is_probed_and_introduced_again_with_its_vdis_under_their_uuids_and_names()
    {
        var sr = (string)(await pool.S("SR.create", pool.Host.Ref, Config("4"), 0L, "NFS4", "", "nfs", "user", true, Map()))!;
        var srUuid = (string)(await pool.S("SR.get_uuid", sr))!;
        var alpha = await NewVdiAsync(sr, "alpha");
        var alphaUuid = (string)(await pool.S("VDI.get_uuid", alpha))!;
        await pool.S("VDI.set_name_label", alpha, "alpha renamed");
        await pool.S("PBD.unplug", await MyPbdAsync(sr));
        await pool.S("SR.forget", sr);
        Assert.True(File.Exists(Path.Combine(_nfs.ExportDirectory, srUuid, alphaUuid + ".qcow2")), "the data stays");

        // SM's answers: the SRs in serverpath, and without serverpath the server's exports inside the error.
        var probe = XDocument.Parse((string)(await pool.S("SR.probe", pool.Host.Ref, Config(), "nfs", Map()))!);
        var listed = Assert.Single(probe.Root!.Elements("SR"));
        Assert.Equal(srUuid, listed.Element("UUID")!.Value);
        Assert.Equal("NFS4", listed.Element("name_label")!.Value);
        var exports = await pool.Fails("SR.probe", pool.Host.Ref, Map(("server", NfsRig.Server)), "nfs", Map());
        Assert.Equal("SR_BACKEND_FAILURE_101", exports.Code);
        var export = Assert.Single(XDocument.Parse(exports.ErrorDescription[3]).Root!.Elements("Export"));
        Assert.Equal((NfsRig.Server, _nfs.Export), (export.Element("Target")!.Value, export.Element("Path")!.Value));

        var introduced = (string)(await pool.S("SR.introduce", srUuid, "NFS4", "introduced", "nfs", "user", true, Map()))!;
        var pbd = (string)(await pool.S("PBD.create", new Dictionary<string, object?>
        {
            ["host"] = pool.Host.Ref, ["SR"] = introduced, ["device_config"] = Config("4.1"), ["other_config"] = Map(),
        }))!;
        await pool.S("PBD.plug", pbd);
        var vdi = (string)(await pool.S("VDI.get_by_uuid", alphaUuid))!;
        Assert.Equal("alpha renamed", await pool.S("VDI.get_name_label", vdi));
        Assert.Equal(introduced, await pool.S("VDI.get_SR", vdi));

        await pool.S("VDI.destroy", vdi);
        await pool.S("PBD.unplug", pbd);
        await pool.S("SR.destroy", introduced);
        Assert.False(Directory.Exists(Path.Combine(_nfs.ExportDirectory, srUuid)));
    }

    [Fact]
    public async Task Bad_nfs_device_configs_get_sms_errors()
    {
        async Task<string> CreateFails(Dictionary<string, object?> config) =>
            (await pool.Fails("SR.create", pool.Host.Ref, config, 0L, "bad", "", "nfs", "user", true, Map())).Code;

        Assert.Equal("SR_BACKEND_FAILURE_102", await CreateFails(Map(("serverpath", _nfs.Export))));
        Assert.Equal("SR_BACKEND_FAILURE_101", await CreateFails(Map(("server", NfsRig.Server))));
        Assert.Equal("SR_BACKEND_FAILURE_72", await CreateFails(Config("2")));
        // Loopback, but no NFS service answers there: SM's NFSTarget.
        Assert.Equal("SR_BACKEND_FAILURE_108", await CreateFails(Map(("server", "127.0.0.2"), ("serverpath", _nfs.Export))));
        // The server answers but exports no such path: SM's NFSMount.
        Assert.Equal("SR_BACKEND_FAILURE_73", await CreateFails(Map(("server", NfsRig.Server), ("serverpath", "/no/such/export"))));
        Assert.Empty(Directory.GetDirectories(_nfs.ExportDirectory));

        // The same checks when an introduced SR's PBD is plugged.
        var introduced = (string)(await pool.S("SR.introduce", "", "introduced badly", "", "nfs", "user", true, Map()))!;
        foreach (var (config, code) in new[]
                 {
                     (Map(("server", NfsRig.Server)), "SR_BACKEND_FAILURE_101"),
                     (Config("2"), "SR_BACKEND_FAILURE_72"),
                 })
        {
            var pbd = (string)(await pool.S("PBD.create", new Dictionary<string, object?>
            {
                ["host"] = pool.Host.Ref, ["SR"] = introduced, ["device_config"] = config, ["other_config"] = Map(),
            }))!;
            Assert.Equal(code, (await pool.Fails("PBD.plug", pbd)).Code);
            await pool.S("PBD.destroy", pbd);
        }

        await pool.S("SR.forget", introduced);
        foreach (var sr in (List<object?>)(await pool.S("SR.get_all"))!)
        {
            Assert.NotEqual("bad", await pool.S("SR.get_name_label", sr)); // a refused create leaves no record
        }
    }
}
