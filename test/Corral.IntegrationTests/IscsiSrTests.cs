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

    /// <summary>The VDIs destroyed, then this host's PBD of the SR unplugged and the SR destroyed.</summary>
    private async Task RemoveAsync(string sr, params string[] vdis)
    {
        foreach (var vdi in vdis)
        {
            await pool.S("VDI.destroy", vdi);
        }

        await pool.S("PBD.unplug", await MyPbdAsync(sr));
        await pool.S("SR.destroy", sr);
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

        // b grows in place, into the free space after it; shrinking is refused.
        await pool.S("VDI.resize", b, 20L << 20);
        Assert.Equal(20L << 20, await pool.S("VDI.get_virtual_size", b));
        Assert.Equal($"{bUuid}.{IscsiLunLayout.MetadataArea + (16L << 20)}+{20L << 20}", await pool.S("VDI.get_location", b));
        Assert.Equal(ErrorCodes.VdiTooSmall, (await pool.Fails("VDI.resize", b, 8L << 20)).Code);

        // a cannot grow in place (b follows it): it moves, with its bytes, to the first free extent of its new size.
        await WriteAsync(tgt, IscsiLunLayout.MetadataArea + (1L << 20), 0x3c);
        await pool.S("VDI.resize", a, 32L << 20);
        var moved = IscsiLunLayout.MetadataArea + (36L << 20);
        Assert.Equal($"{aUuid}.{moved}+{32L << 20}", await pool.S("VDI.get_location", a));
        Assert.Equal(32L << 20, await pool.S("VDI.get_virtual_size", a));
        Assert.True(await HoldsAsync(tgt, moved + (1L << 20), 0x3c), "the moved VDI's bytes are at its new extent");
        Assert.Equal(52L << 20, await pool.S("SR.get_physical_utilisation", sr));
        Assert.Equal((string)(await pool.S("VDI.get_location", a))!, MetadataOnLun(tgt)!.Vdis.Single(v => v.Uuid == aUuid).Location);
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
    /// where the extent starts.
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

            await RemoveAsync(sr, copy);
            await RemoveAsync(fileSr, source);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>
    /// VDI.clone, VDI.snapshot and VDI.copy of a VDI of the LUN: full copies into new extents of it (or, copied out, a
    /// file SR's qcow2), each holding the source's bytes; the map keeps no partial extent and a scan adopts nothing more.
    /// </summary>
    [Fact]
    public async Task Clones_snapshots_and_copies_of_an_extent_are_full_copies_with_its_bytes()
    {
        await using var tgt = await TgtRig.StartAsync();
        var directory = Directory.CreateTempSubdirectory("corral-iscsi-clone-").FullName;
        try
        {
            var sr = await CreateSrAsync(Config(), "clones");
            var source = await NewVdiAsync(sr, "base", 8L << 20);
            await WriteAsync(tgt, IscsiLunLayout.MetadataArea + (1L << 20), 0x5a);

            var clone = (string)(await pool.S("VDI.clone", source, Map()))!;
            var snapshot = (string)(await pool.S("VDI.snapshot", source, Map()))!;
            Assert.Equal("base", await pool.S("VDI.get_name_label", clone));
            Assert.Equal((true, source), ((bool)(await pool.S("VDI.get_is_a_snapshot", snapshot))!, (string)(await pool.S("VDI.get_snapshot_of", snapshot))!));
            var offsets = new List<long>();
            foreach (var copy in new[] { clone, snapshot })
            {
                var (uuid, offset, size) = IscsiLunLayout.ParseLocation((string)(await pool.S("VDI.get_location", copy))!)!.Value;
                Assert.Equal((string)(await pool.S("VDI.get_uuid", copy))!, uuid);
                Assert.Equal(8L << 20, size);
                Assert.True(await HoldsAsync(tgt, offset + (1L << 20), 0x5a), $"{copy} holds the source's bytes");
                offsets.Add(offset);
            }

            Assert.Equal(3, offsets.Append(IscsiLunLayout.MetadataArea).Distinct().Count());
            var extents = (Dictionary<string, object?>)(await pool.S("SR.get_sm_config", sr))!;
            Assert.DoesNotContain("partial-", (string)extents[IscsiExtents.Key]!, StringComparison.Ordinal);
            await pool.S("SR.scan", sr);
            Assert.Equal(3, ((List<object?>)(await pool.S("SR.get_VDIs", sr))!).Count);
            Assert.Equal(3, MetadataOnLun(tgt)!.Vdis.Count);

            // Copied out to a file SR: a qcow2 image qemu-img reads the same bytes from.
            var fileSr = (string)(await pool.S("SR.create", pool.Host.Ref, Map(("location", directory)), 0L, "files", "", "file", "user", false, Map()))!;
            var outside = (string)(await pool.S("VDI.copy", snapshot, fileSr))!;
            var image = Path.Combine(directory, (string)(await pool.S("VDI.get_location", outside))!);
            await Command.RunAsync("qemu-io", ["-f", "qcow2", "-c", "read -P 0x5a 1M 64k", image]);

            await RemoveAsync(fileSr, outside);
            await RemoveAsync(sr, clone, snapshot, source);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>
    /// A target that admits only listed initiators (tgt's initiator-name ACL) admits the host under its own IQN
    /// (Host.iscsi_iqn, other_config:iscsi_iqn as SM reads it), which every tool, qemu-img included, logs in under; a PBD's
    /// localIQN names another, which the target refuses.
    /// </summary>
    [Fact]
    public async Task A_target_admitting_only_the_hosts_iqn_admits_the_host_under_its_own_initiator_name()
    {
        // As an administrator lists the host on the SAN: its IQN set as xapi sets it (the field and other_config).
        var hostIqn = $"iqn.2026-12.org.corral.test:{Guid.NewGuid():N}";
        Assert.Equal(ErrorCodes.InvalidValue, (await pool.Fails("host.set_iscsi_iqn", pool.Host.Ref, "")).Code);
        await pool.S("host.set_iscsi_iqn", pool.Host.Ref, hostIqn);
        Assert.Equal(hostIqn, await pool.S("host.get_iscsi_iqn", pool.Host.Ref));
        Assert.Equal(hostIqn, ((Dictionary<string, object?>)(await pool.S("host.get_other_config", pool.Host.Ref))!)["iscsi_iqn"]);
        await using var tgt = await TgtRig.StartAsync(initiator: hostIqn);
        var sr = await CreateSrAsync(Config(), "masked");
        var source = await NewVdiAsync(sr, "disk", 4L << 20);
        var clone = (string)(await pool.S("VDI.clone", source, Map()))!;
        Assert.Equal(2, MetadataOnLun(tgt)!.Vdis.Count);

        // Discovery too (a probe with the portal alone) logs in as the host: the masked target shows itself to it.
        Assert.Contains($"<TargetIQN>{TgtRig.Iqn}</TargetIQN>", (await pool.Fails("SR.probe", pool.Host.Ref, Map(("target", TgtRig.Address)), "lvmoiscsi", Map())).ErrorDescription[^1],
            StringComparison.Ordinal);
        var elsewhere = await pool.Fails("SR.probe", pool.Host.Ref, Config(("localIQN", "iqn.2026-12.org.corral.test:not-listed")), "lvmoiscsi", Map());
        Assert.Contains(elsewhere.Code, new[] { "SR_BACKEND_FAILURE_68", "SR_BACKEND_FAILURE_96" });

        await RemoveAsync(sr, clone, source);
    }

    /// <summary>Writes 64 KiB of <paramref name="value"/> into the LUN's backing file at <paramref name="offset"/>, as a guest of a VDI there would.</summary>
    private static async Task WriteAsync(TgtRig tgt, long offset, byte value)
    {
        await using var lun = new FileStream(tgt.BackingFile, FileMode.Open, FileAccess.Write);
        lun.Position = offset;
        await lun.WriteAsync(Enumerable.Repeat(value, 64 << 10).ToArray());
    }

    private static async Task<bool> HoldsAsync(TgtRig tgt, long offset, byte value)
    {
        var bytes = new byte[64 << 10];
        await using var lun = File.OpenRead(tgt.BackingFile);
        lun.Position = offset;
        await lun.ReadExactlyAsync(bytes);
        return bytes.All(b => b == value);
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
