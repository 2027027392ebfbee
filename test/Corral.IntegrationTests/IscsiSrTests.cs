using System.Xml.Linq;
using Corral.Model;
using Corral.Storage;
using Corral.Storage.Iscsi;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>
/// iSCSI SRs (<c>type=lvmoiscsi</c>, device-config as XenServer's) on a real userspace target (tgt on loopback), run
/// by a real agent's storage handlers over a real etcd: the agent reaches the LUN only through libiscsi's tools and
/// qemu-img's iscsi driver; what the LUN holds is checked in the target's backing file.
/// </summary>
public sealed class IscsiSrTests(AgentFixture pool) : IClassFixture<AgentFixture>
{
    /// <summary>A map of the pairs, a later pair replacing an earlier one of the same key.</summary>
    private static Dictionary<string, object?> Map(params (string Key, string Value)[] pairs) =>
        pairs.GroupBy(p => p.Key).ToDictionary(g => g.Key, g => (object?)g.Last().Value);

    private static Dictionary<string, object?> Config(params (string Key, string Value)[] extra) =>
        Map([("target", TgtRig.Address), ("port", "3260"), ("targetIQN", TgtRig.Iqn), ("SCSIid", TgtRig.ScsiId), .. extra]);

    private async Task<string> CreateSrAsync(Dictionary<string, object?> config, string name = "iSCSI") =>
        (string)(await pool.S("SR.create", pool.Host.Ref, config, 0L, name, "on tgt", "lvmoiscsi", "user", true, Map()))!;

    private async Task<string> NewVdiAsync(string sr, string name, long size) =>
        (string)(await pool.S("VDI.create", new Dictionary<string, object?>
        {
            ["SR"] = sr, ["name_label"] = name, ["name_description"] = name + " disk", ["virtual_size"] = size, ["type"] = "user",
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

    /// <summary>The SR's metadata as the LUN's backing file holds it (the slot of the highest generation).</summary>
    private static SrMetadata? MetadataOnLun(TgtRig tgt)
    {
        var area = new byte[IscsiLunLayout.MetadataArea];
        using (var file = File.OpenRead(tgt.BackingFile))
        {
            file.ReadExactly(area);
        }

        SrMetadata? best = null;
        long bestGeneration = -1;
        for (var slot = 0; slot < 2; slot++)
        {
            var bytes = area.AsSpan((int)(slot * IscsiLunLayout.SlotSize), (int)IscsiLunLayout.SlotSize);
            var newline = bytes.IndexOf((byte)'\n');
            var header = newline > 0 ? System.Text.Encoding.ASCII.GetString(bytes[..newline]).Split(' ') : [];
            if (header.Length == 4 && header[0] == "CORRAL-ISCSI-SR" && long.Parse(header[1], System.Globalization.CultureInfo.InvariantCulture) > bestGeneration)
            {
                bestGeneration = long.Parse(header[1], System.Globalization.CultureInfo.InvariantCulture);
                best = SrMetadataFile.Parse(System.Text.Encoding.UTF8.GetString(bytes.Slice(newline + 1, int.Parse(header[2], System.Globalization.CultureInfo.InvariantCulture))), "lun");
            }
        }

        return best;
    }

    [Fact]
    public async Task An_iscsi_sr_keeps_its_vdis_as_extents_of_its_lun_through_create_resize_and_destroy()
    {
        await using var tgt = await TgtRig.StartAsync();
        var sr = await CreateSrAsync(Config());
        var srUuid = (string)(await pool.S("SR.get_uuid", sr))!;
        Assert.Equal(srUuid, MetadataOnLun(tgt)!.Sr.Uuid);
        Assert.Equal((256L << 20) - IscsiLunLayout.MetadataArea, await pool.S("SR.get_physical_size", sr));
        Assert.True((bool)(await pool.S("PBD.get_currently_attached", await MyPbdAsync(sr)))!);

        var a = await NewVdiAsync(sr, "a", 16L << 20);
        var b = await NewVdiAsync(sr, "b", (8L << 20) + 1); // rounded up to whole MiB
        var aUuid = (string)(await pool.S("VDI.get_uuid", a))!;
        var bUuid = (string)(await pool.S("VDI.get_uuid", b))!;
        Assert.Equal($"{aUuid}.{IscsiLunLayout.MetadataArea}+{16L << 20}", await pool.S("VDI.get_location", a));
        Assert.Equal($"{bUuid}.{IscsiLunLayout.MetadataArea + (16L << 20)}+{9L << 20}", await pool.S("VDI.get_location", b));
        Assert.Equal(9L << 20, await pool.S("VDI.get_virtual_size", b));
        Assert.Equal(25L << 20, await pool.S("SR.get_physical_utilisation", sr));
        var onLun = MetadataOnLun(tgt)!;
        Assert.Equal(["a", "b"], onLun.Vdis.Select(v => v.NameLabel).Order());
        Assert.Equal((string)(await pool.S("VDI.get_location", b))!, onLun.Vdis.Single(v => v.Uuid == bUuid).Location);

        // a cannot grow in place (b follows it); b can, into the free space after it; shrinking is refused.
        Assert.Equal("SR_BACKEND_FAILURE_44", (await pool.Fails("VDI.resize", a, 32L << 20)).Code);
        await pool.S("VDI.resize", b, 20L << 20);
        Assert.Equal(20L << 20, await pool.S("VDI.get_virtual_size", b));
        Assert.Equal($"{bUuid}.{IscsiLunLayout.MetadataArea + (16L << 20)}+{20L << 20}", await pool.S("VDI.get_location", b));
        Assert.Equal(ErrorCodes.VdiTooSmall, (await pool.Fails("VDI.resize", b, 8L << 20)).Code);
        Assert.Equal(ErrorCodes.SrOperationNotSupported, (await pool.Fails("VDI.clone", b, Map())).Code);
        Assert.Equal("SR_BACKEND_FAILURE_44", (await pool.Fails("VDI.create", new Dictionary<string, object?>
        {
            ["SR"] = sr, ["name_label"] = "huge", ["name_description"] = "", ["virtual_size"] = 250L << 20, ["type"] = "user",
        })).Code);

        // The space a destroyed VDI leaves is the next one's.
        await pool.S("VDI.destroy", a);
        var c = await NewVdiAsync(sr, "c", 4L << 20);
        Assert.StartsWith($"{(string)(await pool.S("VDI.get_uuid", c))!}.{IscsiLunLayout.MetadataArea}+", (string)(await pool.S("VDI.get_location", c))!);
        Assert.Equal(["b", "c"], MetadataOnLun(tgt)!.Vdis.Select(v => v.NameLabel).Order());

        var pbd = await MyPbdAsync(sr);
        await pool.S("PBD.unplug", pbd);
        Assert.Equal([ErrorCodes.SrNotEmpty], (await pool.Fails("SR.destroy", sr)).ErrorDescription);
        await pool.S("PBD.plug", pbd);
        await pool.S("VDI.destroy", b);
        await pool.S("VDI.destroy", c);
        await pool.S("PBD.unplug", pbd);
        await pool.S("SR.destroy", sr);
        Assert.Null(MetadataOnLun(tgt));
    }

    /// <summary>
    /// vm-install's copy of a template's disk: a qcow2 VDI of a file SR is copied into an extent of the LUN, raw, its bytes
    /// where the extent starts; a copy from one extent to another is not offered yet.
    /// </summary>
    [Fact]
    public async Task A_vdi_of_a_file_sr_is_copied_into_an_extent_of_the_lun()
    {
        await using var tgt = await TgtRig.StartAsync();
        var directory = Directory.CreateTempSubdirectory("corral-iscsi-copy-").FullName;
        try
        {
            var fileSr = (string)(await pool.S("SR.create", pool.Host.Ref, Map(("location", directory)), 0L, "files", "", "file", "user", false, Map()))!;
            var source = await NewVdiAsync(fileSr, "template disk", 8L << 20);
            var image = Path.Combine(directory, (string)(await pool.S("VDI.get_location", source))!);
            await Command.RunAsync("qemu-io", ["-f", "qcow2", "-c", "write -P 0x5a 1M 64k", image]);

            var sr = await CreateSrAsync(Config(), "copies");
            var copy = (string)(await pool.S("VDI.copy", source, sr))!;
            var location = (string)(await pool.S("VDI.get_location", copy))!;
            var offset = long.Parse(location.Split('.')[1].Split('+')[0], System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal($"{(string)(await pool.S("VDI.get_uuid", copy))!}.{IscsiLunLayout.MetadataArea}+{8L << 20}", location);
            Assert.Equal("template disk", await pool.S("VDI.get_name_label", copy));
            var bytes = new byte[2L << 20];
            await using (var lun = File.OpenRead(tgt.BackingFile))
            {
                lun.Seek(offset, SeekOrigin.Begin);
                lun.ReadExactly(bytes);
            }

            Assert.All(bytes[..(1 << 20)], b => Assert.Equal(0, b));
            Assert.All(bytes[(1 << 20)..((1 << 20) + (64 << 10))], b => Assert.Equal(0x5a, b));
            Assert.Equal(ErrorCodes.SrOperationNotSupported, (await pool.Fails("VDI.copy", copy, sr)).Code);

            await pool.S("VDI.destroy", copy);
            await pool.S("PBD.unplug", await MyPbdAsync(sr));
            await pool.S("SR.destroy", sr);
            await pool.S("VDI.destroy", source);
            await pool.S("PBD.unplug", await MyPbdAsync(fileSr));
            await pool.S("SR.destroy", fileSr);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>Hosts allocating at once (here eight allocations racing on the real etcd) never get overlapping extents.</summary>
    [Fact]
    public async Task Extents_allocated_at_once_never_overlap()
    {
        await using var tgt = await TgtRig.StartAsync();
        var sr = await CreateSrAsync(Config(), "race");
        var srUuid = (string)(await pool.S("SR.get_uuid", sr))!;
        var extents = new IscsiExtents(() => pool.Database);
        var allocated = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() =>
            extents.AllocateAsync(srUuid, Guid.NewGuid().ToString(), 3L << 20, 256L << 20, default))));
        var ordered = allocated.OrderBy(e => e.Offset).ToList();
        for (var i = 1; i < ordered.Count; i++)
        {
            Assert.True(ordered[i].Offset >= ordered[i - 1].Offset + ordered[i - 1].Size, $"{ordered[i - 1]} overlaps {ordered[i]}");
        }

        Assert.Equal(8, (await extents.ReadAsync(srUuid, default)).Count);
        await pool.S("PBD.unplug", await MyPbdAsync(sr));
        await pool.S("SR.forget", sr);
    }

    [Fact]
    public async Task An_iscsi_target_is_probed_at_sms_three_levels_and_a_forgotten_sr_is_introduced_with_its_vdis()
    {
        await using var tgt = await TgtRig.StartAsync();
        var iqns = await pool.Fails("SR.probe", pool.Host.Ref, Map(("target", TgtRig.Address)), "lvmoiscsi", Map());
        Assert.Equal("SR_BACKEND_FAILURE_96", iqns.Code);
        var tgtElement = Assert.Single(XDocument.Parse(iqns.ErrorDescription[3]).Root!.Elements("TGT"));
        Assert.Equal((TgtRig.Address, TgtRig.Iqn), (tgtElement.Element("IPAddress")!.Value, tgtElement.Element("TargetIQN")!.Value));

        var luns = await pool.Fails("SR.probe", pool.Host.Ref, Map(("target", TgtRig.Address), ("targetIQN", TgtRig.Iqn)), "lvmoiscsi", Map());
        Assert.Equal("SR_BACKEND_FAILURE_107", luns.Code);
        var lun = Assert.Single(XDocument.Parse(luns.ErrorDescription[3]).Root!.Elements("LUN"));
        Assert.Equal((TgtRig.ScsiId, "1", (256L << 20).ToString(System.Globalization.CultureInfo.InvariantCulture), "IET"),
            (lun.Element("SCSIid")!.Value, lun.Element("LUNid")!.Value, lun.Element("size")!.Value, lun.Element("vendor")!.Value));
        Assert.Equal("SR_BACKEND_FAILURE_96",
            (await pool.Fails("SR.probe", pool.Host.Ref, Map(("target", TgtRig.Address), ("targetIQN", "iqn.2026-12.org.corral:none")), "lvmoiscsi", Map())).Code);
        Assert.Empty(XDocument.Parse((string)(await pool.S("SR.probe", pool.Host.Ref, Config(), "lvmoiscsi", Map()))!).Root!.Elements("SR"));
        // The id Corral showed before it read NAA designators still names the LUN (PBDs made then keep plugging).
        Assert.Empty(XDocument.Parse((string)(await pool.S("SR.probe", pool.Host.Ref, Config(("SCSIid", TgtRig.T10ScsiId)), "lvmoiscsi", Map()))!).Root!.Elements("SR"));

        var sr = await CreateSrAsync(Config(), "kept");
        var srUuid = (string)(await pool.S("SR.get_uuid", sr))!;
        var alpha = await NewVdiAsync(sr, "alpha", 8L << 20);
        var alphaUuid = (string)(await pool.S("VDI.get_uuid", alpha))!;
        var alphaLocation = (string)(await pool.S("VDI.get_location", alpha))!;
        await pool.S("VDI.set_name_label", alpha, "alpha renamed");
        await pool.S("PBD.unplug", await MyPbdAsync(sr));
        await pool.S("SR.forget", sr);
        Assert.Equal(alphaUuid, Assert.Single(MetadataOnLun(tgt)!.Vdis).Uuid);

        var listed = Assert.Single(XDocument.Parse((string)(await pool.S("SR.probe", pool.Host.Ref, Config(), "lvmoiscsi", Map()))!).Root!.Elements("SR"));
        Assert.Equal((srUuid, "kept"), (listed.Element("UUID")!.Value, listed.Element("name_label")!.Value));
        // Another SR is not made over it.
        Assert.Equal("SR_BACKEND_FAILURE_42", (await pool.Fails("SR.create", pool.Host.Ref, Config(), 0L, "over", "", "lvmoiscsi", "user", true, Map())).Code);

        var introduced = (string)(await pool.S("SR.introduce", srUuid, "kept", "introduced", "lvmoiscsi", "user", true, Map()))!;
        // A PBD lacking what SM needs is refused at the plug with SM's error.
        var incomplete = (string)(await pool.S("PBD.create", new Dictionary<string, object?>
        {
            ["host"] = pool.Host.Ref, ["SR"] = introduced, ["device_config"] = Map(("target", TgtRig.Address), ("targetIQN", TgtRig.Iqn)), ["other_config"] = Map(),
        }))!;
        Assert.Equal("SR_BACKEND_FAILURE_107", (await pool.Fails("PBD.plug", incomplete)).Code);
        await pool.S("PBD.destroy", incomplete);
        var pbd = (string)(await pool.S("PBD.create", new Dictionary<string, object?>
        {
            ["host"] = pool.Host.Ref, ["SR"] = introduced, ["device_config"] = Config(), ["other_config"] = Map(),
        }))!;
        await pool.S("PBD.plug", pbd);
        var vdi = (string)(await pool.S("VDI.get_by_uuid", alphaUuid))!;
        Assert.Equal(("alpha renamed", introduced, alphaLocation),
            ((string)(await pool.S("VDI.get_name_label", vdi))!, (string)(await pool.S("VDI.get_SR", vdi))!, (string)(await pool.S("VDI.get_location", vdi))!));
        // The extent map came back from the LUN: a new VDI does not overlap alpha.
        var beta = await NewVdiAsync(introduced, "beta", 4L << 20);
        Assert.Contains($".{IscsiLunLayout.MetadataArea + (8L << 20)}+", (string)(await pool.S("VDI.get_location", beta))!);

        await pool.S("VDI.destroy", vdi);
        await pool.S("VDI.destroy", beta);
        await pool.S("PBD.unplug", pbd);
        await pool.S("SR.destroy", introduced);
    }

    [Fact]
    public async Task Chap_credentials_are_required_and_checked_and_bad_configs_get_sms_errors()
    {
        await using var tgt = await TgtRig.StartAsync(chap: ("corral", "s3cret-pass"));
        async Task<string> CreateFails(Dictionary<string, object?> config) =>
            (await pool.Fails("SR.create", pool.Host.Ref, config, 0L, "bad", "", "lvmoiscsi", "user", true, Map())).Code;

        Assert.Equal("SR_BACKEND_FAILURE_95", await CreateFails(Map(("targetIQN", TgtRig.Iqn), ("SCSIid", TgtRig.ScsiId))));
        Assert.Equal("SR_BACKEND_FAILURE_96", await CreateFails(Map(("target", TgtRig.Address), ("SCSIid", TgtRig.ScsiId))));
        Assert.Equal("SR_BACKEND_FAILURE_107", await CreateFails(Map(("target", TgtRig.Address), ("targetIQN", TgtRig.Iqn))));
        var wrong = await pool.Fails("SR.create", pool.Host.Ref, Config(("chapuser", "corral"), ("chappassword", "wrong")), 0L, "bad", "", "lvmoiscsi", "user", true, Map());
        Assert.Equal("SR_BACKEND_FAILURE_68", wrong.Code);
        Assert.Contains("CHAP", wrong.ErrorDescription[2], StringComparison.Ordinal);
        Assert.Equal("SR_BACKEND_FAILURE_68", await CreateFails(Config()));
        Assert.Equal("SR_BACKEND_FAILURE_1", await CreateFails(Config(("chapuser", "cor@ral"), ("chappassword", "s3cret-pass")))); // libiscsi could not pass it
        Assert.Equal("SR_BACKEND_FAILURE_107", await CreateFails(Config(("SCSIid", "1NO_SUCH_LUN"), ("chapuser", "corral"), ("chappassword", "s3cret-pass"))));

        var sr = await CreateSrAsync(Config(("chapuser", "corral"), ("chappassword", "s3cret-pass")), "chap");
        // The password kept as xapi keeps it: chappassword_secret naming a secret of the PBD's own.
        var kept = (Dictionary<string, object?>)(await pool.S("PBD.get_device_config", await MyPbdAsync(sr)))!;
        Assert.False(kept.ContainsKey("chappassword"));
        Assert.Equal("s3cret-pass", await pool.S("secret.get_value", await pool.S("secret.get_by_uuid", kept["chappassword_secret"])));
        var vdi = await NewVdiAsync(sr, "behind chap", 4L << 20);
        Assert.Equal(vdi, Assert.Single(((List<object?>)(await pool.S("SR.get_VDIs", sr))!).Cast<string>()));
        Assert.Equal((string)(await pool.S("SR.get_uuid", sr))!, MetadataOnLun(tgt)!.Sr.Uuid);
        await pool.S("VDI.destroy", vdi);
        await pool.S("PBD.unplug", await MyPbdAsync(sr));
        await pool.S("SR.destroy", sr);
    }
}
