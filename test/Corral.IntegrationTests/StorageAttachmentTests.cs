using System.Xml.Linq;
using Corral.Model;
using Corral.PoolDatabase;
using Corral.Storage;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>
/// PBDs and SR records over a real etcd, run by a real agent's storage handlers on real directories: an SR taken out
/// of the pool (unplug, forget) and introduced again (introduce, PBD.create, PBD.plug) comes back with its VDIs under
/// their uuids and names; xapi's refusals on the way.
/// </summary>
public sealed class StorageAttachmentTests(AgentFixture pool) : IClassFixture<AgentFixture>
{
    private static Dictionary<string, object?> Map(params (string Key, string Value)[] pairs) => pairs.ToDictionary(p => p.Key, p => (object?)p.Value);

    private async Task<string> NewSrAsync(string directory, string name, bool shared = false) =>
        (string)(await pool.S("SR.create", pool.Host.Ref, Map(("location", directory)), 0L, name, "for tests", "file", "user", shared, Map()))!;

    private async Task<string> NewVdiAsync(string sr, string name) =>
        (string)(await pool.S("VDI.create", new Dictionary<string, object?>
        {
            ["SR"] = sr, ["name_label"] = name, ["name_description"] = name + " disk", ["virtual_size"] = 16L << 20, ["type"] = "user",
        }))!;

    private async Task<string> PbdOfAsync(string sr) => (string)((List<object?>)(await pool.S("SR.get_PBDs", sr))!).Single()!;

    [Fact]
    public async Task An_sr_forgotten_and_introduced_again_finds_its_vdis_under_their_uuids_and_names()
    {
        var directory = Path.Combine(pool.Root, "sr-again");
        var sr = await NewSrAsync(directory, "Again");
        var srUuid = (string)(await pool.S("SR.get_uuid", sr))!;
        var alpha = await NewVdiAsync(sr, "alpha");
        var beta = await NewVdiAsync(sr, "beta");
        var alphaUuid = (string)(await pool.S("VDI.get_uuid", alpha))!;
        var betaUuid = (string)(await pool.S("VDI.get_uuid", beta))!;
        // Renamed after the last write of the metadata: the unplug writes it again.
        await pool.S("VDI.set_name_label", alpha, "alpha renamed");

        var pbd = await PbdOfAsync(sr);
        Assert.Equal([ErrorCodes.OperationNotAllowed, "PBD is currently attached"], (await pool.Fails("PBD.destroy", pbd)).ErrorDescription);
        Assert.Equal([ErrorCodes.SrHasPbd, sr], (await pool.Fails("SR.forget", sr)).ErrorDescription);
        Assert.Equal([ErrorCodes.SrHasPbd, sr], (await pool.Fails("SR.destroy", sr)).ErrorDescription);
        Assert.Equal([ErrorCodes.PbdExists, sr, pool.Host.Ref, pbd], (await pool.Fails("PBD.create", new Dictionary<string, object?>
        {
            ["host"] = pool.Host.Ref, ["SR"] = sr, ["device_config"] = Map(("location", directory)),
        })).ErrorDescription);

        await pool.S("PBD.unplug", pbd);
        Assert.False((bool)(await pool.S("PBD.get_currently_attached", pbd))!);
        await pool.S("PBD.unplug", pbd); // not plugged: nothing to do, as in xapi
        var metadata = (await SrMetadataFile.ReadAsync(directory, default))!;
        Assert.Equal(srUuid, metadata.Sr.Uuid);
        Assert.Equal(["alpha renamed", "beta"], metadata.Vdis.OrderBy(v => v.NameLabel).Select(v => v.NameLabel));

        await pool.S("SR.forget", sr);
        Assert.Null(await pool.Database.FindByUuidAsync(XenClasses.SR, srUuid, default));
        Assert.Null(await pool.Database.FindByUuidAsync(XenClasses.VDI, alphaUuid, default));
        Assert.Equal(2, Directory.GetFiles(directory, "*.qcow2").Length); // the data stays

        // What the location holds, as xapi's probe answers.
        var probe = XDocument.Parse((string)(await pool.S("SR.probe", pool.Host.Ref, Map(("location", directory)), "file", Map()))!);
        var found = Assert.Single(probe.Root!.Elements("SR"));
        Assert.Equal("SRlist", probe.Root.Name.LocalName);
        Assert.Equal(srUuid, found.Element("UUID")!.Value);
        Assert.Equal("Again", found.Element("name_label")!.Value);
        Assert.True(long.Parse(found.Element("size")!.Value, System.Globalization.CultureInfo.InvariantCulture) > 0);
        var extended = Assert.IsType<Dictionary<string, object?>>(Assert.Single((List<object?>)(await pool.S("SR.probe_ext", pool.Host.Ref, Map(("location", directory)), "file", Map()))!));
        var stat = Assert.IsType<Dictionary<string, object?>>(Assert.Single((List<object?>)extended["sr"]!));
        Assert.Equal([srUuid], (List<object?>)stat["uuid"]!);

        var introduced = (string)(await pool.S("SR.introduce", srUuid, "Again", "introduced", "file", "user", false, Map()))!;
        Assert.Equal([ErrorCodes.SrUuidExists, srUuid], (await pool.Fails("SR.introduce", srUuid, "Twice", "", "file", "user", false, Map())).ErrorDescription);
        Assert.Equal(-1L, await pool.S("SR.get_physical_size", introduced));
        var newPbd = (string)(await pool.S("PBD.create", new Dictionary<string, object?>
        {
            ["host"] = pool.Host.Ref, ["SR"] = introduced, ["device_config"] = Map(("location", directory)), ["other_config"] = Map(),
        }))!;
        Assert.False((bool)(await pool.S("PBD.get_currently_attached", newPbd))!);
        await pool.S("PBD.plug", newPbd);
        Assert.True((bool)(await pool.S("PBD.get_currently_attached", newPbd))!);

        var vdis = ((List<object?>)(await pool.S("SR.get_VDIs", introduced))!).Cast<string>().ToList();
        var names = new Dictionary<string, string>();
        foreach (var vdi in vdis)
        {
            names[(string)(await pool.S("VDI.get_uuid", vdi))!] = (string)(await pool.S("VDI.get_name_label", vdi))!;
        }

        Assert.Equal(new Dictionary<string, string> { [alphaUuid] = "alpha renamed", [betaUuid] = "beta" }, names);
        Assert.True((long)(await pool.S("SR.get_physical_size", introduced))! > 0);

        // A second SR is not made over the first.
        var twice = await pool.Fails("SR.create", pool.Host.Ref, Map(("location", directory)), 0L, "Other", "", "file", "user", false, Map());
        Assert.Equal("SR_BACKEND_FAILURE_42", twice.Code);
    }

    [Fact]
    public async Task A_pbd_stays_plugged_while_a_vm_running_on_its_host_uses_the_srs_disks()
    {
        var sr = await NewSrAsync(Path.Combine(pool.Root, "sr-busy"), "Busy");
        var vdi = await NewVdiAsync(sr, "root");
        var tx = new PoolTransaction();
        var vm = tx.Create(XenClasses.VMSchema, new Dictionary<string, object?> { ["name_label"] = "busy", ["power_state"] = "Running", ["resident_on"] = pool.Host.Ref });
        var vbd = tx.Create(XenClasses.VBDSchema, new Dictionary<string, object?> { ["VM"] = vm.Ref, ["VDI"] = vdi, ["userdevice"] = "0", ["currently_attached"] = true });
        await pool.Database.CommitAsync(tx, default);

        var pbd = await PbdOfAsync(sr);
        Assert.Equal([ErrorCodes.VdiInUse, vdi], (await pool.Fails("PBD.unplug", pbd)).ErrorDescription);
        Assert.True((bool)(await pool.S("PBD.get_currently_attached", pbd))!);

        // Once the disk is unplugged from the VM, the SR may go.
        await pool.Database.UpdateAsync([(XenClasses.VBD, vbd.Ref)], (objs, t) =>
        {
            var v = objs[0].Clone();
            v["currently_attached"] = false;
            t.Update(v);
        }, default);
        await pool.S("PBD.unplug", pbd);

        // A local SR plugs on one host at a time.
        var second = (string)(await pool.S("PBD.create", new Dictionary<string, object?>
        {
            ["host"] = pool.OtherHost, ["SR"] = sr, ["device_config"] = Map(("location", Path.Combine(pool.Root, "sr-busy"))),
        }))!;
        await pool.S("PBD.plug", pbd);
        Assert.Equal([ErrorCodes.SrNotSharable, sr, pool.Host.Ref], (await pool.Fails("PBD.plug", second)).ErrorDescription);
        await pool.S("PBD.unplug", pbd);
        // The other host has no agent: its plug cannot run.
        Assert.Equal([ErrorCodes.HostOffline, pool.OtherHost], (await pool.Fails("PBD.plug", second)).ErrorDescription);
        await pool.S("PBD.destroy", second);
        Assert.Null(await pool.Database.TryGetAsync(XenClasses.PBD, second, default));
    }

    [Fact]
    public async Task An_sr_is_destroyed_on_its_storage_only_empty_and_unplugged()
    {
        var directory = Path.Combine(pool.Root, "sr-gone");
        var sr = await NewSrAsync(directory, "Gone");
        var vdi = await NewVdiAsync(sr, "data");
        var pbd = await PbdOfAsync(sr);
        await pool.S("PBD.unplug", pbd);
        Assert.Equal([ErrorCodes.SrNotEmpty], (await pool.Fails("SR.destroy", sr)).ErrorDescription);

        await pool.S("PBD.plug", pbd);
        await pool.S("VDI.destroy", vdi);
        await pool.S("PBD.unplug", pbd);
        await pool.S("SR.destroy", sr);
        Assert.Null(await pool.Database.TryGetAsync(XenClasses.SR, sr, default));
        Assert.Null(await pool.Database.TryGetAsync(XenClasses.PBD, pbd, default));
        Assert.False(File.Exists(SrMetadataFile.PathIn(directory)));
        Assert.Empty(Directory.GetFiles(directory));

        // A place that holds no SR yet: an empty list, and probe_ext's complete configuration.
        var empty = XDocument.Parse((string)(await pool.S("SR.probe", pool.Host.Ref, Map(("location", directory)), "file", Map()))!);
        Assert.Empty(empty.Root!.Elements());
        var result = Assert.IsType<Dictionary<string, object?>>(Assert.Single((List<object?>)(await pool.S("SR.probe_ext", pool.Host.Ref, Map(("location", directory)), "file", Map()))!));
        Assert.True((bool)result["complete"]!);
        Assert.Empty((List<object?>)result["sr"]!);

        // xapi's ISO driver has no probe; a location that is not there is the driver's error.
        Assert.Equal([ErrorCodes.SrBackendFailure, "Operation 'sr_probe' not supported by this SR type", "", ""],
            (await pool.Fails("SR.probe", pool.Host.Ref, Map(("location", directory)), "iso", Map())).ErrorDescription);
        Assert.Equal("SR_BACKEND_FAILURE_47", (await pool.Fails("SR.probe", pool.Host.Ref, Map(("location", directory + "-missing")), "file", Map())).Code);
        Assert.Equal("SR_BACKEND_FAILURE_94", (await pool.Fails("SR.probe", pool.Host.Ref, Map(), "file", Map())).Code);
        Assert.Equal(ErrorCodes.SrUnknownDriver, (await pool.Fails("SR.probe", pool.Host.Ref, Map(), "lvm", Map())).Code);
    }
}
