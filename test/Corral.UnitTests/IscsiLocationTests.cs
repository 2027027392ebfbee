using System.Text.Json.Nodes;
using System.Xml.Linq;
using Corral.Hypervisor.Qemu;
using Corral.Storage;
using Corral.Storage.Iscsi;
using Xunit;

namespace Corral.UnitTests;

/// <summary>An iSCSI SR's location string, its VDIs' extents, SM's probe lists and what QEMU is given for a VDI.</summary>
public class IscsiLocationTests
{
    private const string Sr = "0b7d1c4e-5a8f-4c2e-9d3b-6f1a2b3c4d5e";
    private const string Iqn = "iqn.2026-12.org.corral:sr";

    private static Dictionary<string, string> Config(params (string Key, string Value)[] extra) =>
        new[] { ("target", "10.0.0.5"), ("targetIQN", Iqn), ("SCSIid", "1IET_00010001") }.Concat(extra).ToDictionary(p => p.Item1, p => p.Item2);

    /// <summary>
    /// The extent path storage and QEMU share, read back; qemu-img gets it as options of a raw node bounded to the extent,
    /// its CHAP password in a secret file only its owner reads, gone once the copy is done.
    /// </summary>
    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void An_extent_path_is_read_back_and_qemu_img_opens_it_bounded_with_its_password_in_a_private_file()
    {
        var chap = new IscsiLocation("10.0.0.5", 3261, "iqn.2026-12.org.corral:a,b", "1IET_00010001", Sr, "corral.us", "p%ss:w,rd#1");
        var path = chap.ExtentPath(2, 4 << 20, 1 << 20);
        Assert.Equal(new Corral.Platform.IscsiExtentPath("10.0.0.5:3261", "iqn.2026-12.org.corral:a,b", 2, 4 << 20, 1 << 20, "corral.us", "p%ss:w,rd#1"),
            Corral.Platform.IscsiExtentPath.TryParse(path));
        Assert.Null(Corral.Platform.IscsiExtentPath.TryParse("iscsi://10.0.0.5:3260/iqn/2"));
        Assert.Null(Corral.Platform.IscsiExtentPath.TryParse("/srv/sr/disk.qcow2#1+2"));
        Assert.Null(Corral.Platform.IscsiExtentPath.TryParse("iscsi://10.0.0.5:3260/iqn/x#1+2"));
        Assert.Equal("iscsi://corral.us@10.0.0.5:3261/iqn.2026-12.org.corral:a,b/2#4194304+1048576", QemuImgImage.Describe(path));

        using (var plain = QemuImgImage.Open("/srv/sr/disk.qcow2"))
        {
            Assert.Equal(([], "/srv/sr/disk.qcow2"), (plain.Options.ToArray(), plain.Name));
        }

        string secretFile;
        using (var image = QemuImgImage.Open(path))
        {
            Assert.Equal("driver=raw,offset=4194304,size=1048576,file.driver=iscsi,file.transport=tcp,file.portal=10.0.0.5:3261," +
                         "file.target=iqn.2026-12.org.corral:a,,b,file.lun=2,file.user=corral.us,file.password-secret=chap-source", image.Name);
            Assert.Equal("--image-opts", image.Options[^1]);
            Assert.DoesNotContain(image.Options, o => o.Contains("rd#1", StringComparison.Ordinal));
            secretFile = image.Options[1].Split("file=")[1];
            Assert.Equal("p%ss:w,rd#1", File.ReadAllText(secretFile));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(secretFile));
        }

        Assert.False(File.Exists(secretFile));

        // The host's initiator name (SM's localIQN) travels in the location and the extent path to every session.
        var masked = IscsiLocation.Parse(SrLocation.Of(Config(("localIQN", "iqn.2026-12.org.corral:host-1")), Sr)!);
        Assert.Equal("iqn.2026-12.org.corral:host-1", masked.Initiator);
        Assert.Equal(masked, IscsiLocation.Parse(masked.ToString()));
        Assert.Equal(["-i", "iqn.2026-12.org.corral:host-1"], masked.LibIscsiInitiatorArguments);
        var maskedPath = masked.ExtentPath(1, 4 << 20, 1 << 20);
        Assert.Equal($"iscsi://10.0.0.5:3260/{Iqn}/1?initiator=iqn.2026-12.org.corral%3Ahost-1#4194304+1048576", maskedPath);
        Assert.Equal("iqn.2026-12.org.corral:host-1", Corral.Platform.IscsiExtentPath.TryParse(maskedPath)!.Initiator);
        Assert.Contains(",file.initiator-name=iqn.2026-12.org.corral:host-1", QemuBlockProtocol.DriveOptions(maskedPath, "raw", "s"), StringComparison.Ordinal);
        Assert.Equal("iqn.2026-12.org.corral:host-1", QemuBlockProtocol.For(maskedPath)["initiator-name"]!.GetValue<string>());
        Assert.Null(Corral.Platform.IscsiExtentPath.TryParse($"iscsi://10.0.0.5:3260/{Iqn}/1?other=x#1+2"));
        Assert.Null(IscsiLocation.Parse(SrLocation.Of(Config(), Sr)!).Initiator);
    }

    [Fact]
    public void A_pbd_of_an_iscsi_sr_locates_it_by_portal_iqn_and_scsiid_with_its_chap_credentials()
    {
        var plain = SrLocation.Of(Config(), Sr)!;
        Assert.Equal(new IscsiLocation("10.0.0.5", 3260, Iqn, "1IET_00010001", Sr), IscsiLocation.Parse(plain));

        var chap = IscsiLocation.Parse(SrLocation.Of(Config(("port", "3261"), ("chapuser", "corral.us"), ("chappassword", "p%ss:w,rd#1")), Sr)!);
        Assert.Equal(("10.0.0.5", 3261, "corral.us", "p%ss:w,rd#1"), (chap.Address, chap.Port, chap.ChapUser, chap.ChapPassword));
        // libiscsi's form: user%password@, unescaped; the extent after the last '#'.
        Assert.Equal($"iscsi://corral.us%p%ss:w,rd#1@10.0.0.5:3261/{Iqn}/2#4194304+1048576", chap.ExtentPath(2, 4 << 20, 1 << 20));
        // QEMU gets the password in a secret object, never on its command line or in a log.
        var extent = chap.ExtentPath(2, 4 << 20, 1 << 20);
        Assert.Equal(("corral.us", "p%ss:w,rd#1"), QemuBlockProtocol.Credentials(extent));
        Assert.Equal(",format=raw,offset=4194304,size=1048576,file.driver=iscsi,file.transport=tcp,file.portal=10.0.0.5:3261," +
                     $"file.target={Iqn},file.lun=2,file.user=corral.us,file.password-secret=drive3-chap",
            QemuBlockProtocol.DriveOptions(extent, "raw", "drive3-chap"));
        Assert.Equal($"iscsi://corral.us@10.0.0.5:3261/{Iqn}/2#4194304+1048576", QemuBlockProtocol.Redacted(extent));
        Assert.Equal("drive3-chap", QemuBlockProtocol.For(extent, "drive3-chap")["password-secret"]!.GetValue<string>());
        Assert.Throws<ArgumentException>(() => QemuBlockProtocol.For(extent));
        Assert.False(IscsiLocation.UrlSafe("us@r", "x"));
        Assert.False(IscsiLocation.UrlSafe("user", "a/b"));

        Assert.Null(SrLocation.Of(Config(("port", "iscsi")), Sr));
        Assert.Null(SrLocation.Of(new Dictionary<string, string> { ["target"] = "10.0.0.5", ["targetIQN"] = Iqn }, Sr));
        Assert.Throws<FormatException>(() => IscsiLocation.Parse("iscsi://10.0.0.5:3260/" + Iqn));
    }

    [Fact]
    public void A_vdis_location_names_its_extent_after_the_metadata_area()
    {
        var location = IscsiLunLayout.Location(Sr, 8 << 20, 16 << 20);
        Assert.Equal($"{Sr}.8388608+16777216", location);
        Assert.Equal((Sr, 8L << 20, 16L << 20), IscsiLunLayout.ParseLocation(location));
        Assert.Null(IscsiLunLayout.ParseLocation($"{Sr}.0+16777216")); // inside the metadata area
        Assert.Null(IscsiLunLayout.ParseLocation($"{Sr}.qcow2"));
    }

    [Fact]
    public void Sms_probe_lists_name_the_targets_iqns_and_luns()
    {
        var portal = new IscsiLocation("10.0.0.5", 3260, "", "", "");
        var tgt = Assert.Single(XDocument.Parse(IscsiTarget.TargetsXml(portal, [Iqn])).Root!.Elements("TGT"));
        Assert.Equal(("0", "10.0.0.5", Iqn), (tgt.Element("Index")!.Value, tgt.Element("IPAddress")!.Value, tgt.Element("TargetIQN")!.Value));

        var lun = Assert.Single(XDocument.Parse(IscsiTarget.LunsXml([new IscsiLun(1, "1IET_00010001", "IET", "beaf11", 1L << 30)])).Root!.Elements("LUN"));
        Assert.Equal(("IET", "beaf11", "1", "1073741824", "1IET_00010001"),
            (lun.Element("vendor")!.Value, lun.Element("serial")!.Value, lun.Element("LUNid")!.Value, lun.Element("size")!.Value, lun.Element("SCSIid")!.Value));
    }

    [Fact]
    public void The_scsiid_is_what_udevs_scsi_id_makes_of_the_luns_designators()
    {
        // tgt's LUN 1, as its device identification page gives it: two NAA designators and a T10 vendor ID.
        var naa6 = Convert.FromHexString("60000000000000000e00000000010001");
        var tgt = new List<ScsiDesignator>
        {
            new(ScsiDesignator.Naa, 1, 0, naa6),
            new(ScsiDesignator.Naa, 1, 0, Convert.FromHexString("3000000000000000")),
            new(ScsiDesignator.T10Vendor, 2, 0, "IET     00010001"u8.ToArray()),
        };
        Assert.Equal("360000000000000000e00000000010001", ScsiDesignator.ScsiIdOf(tgt));

        // NAA 6 before NAA 5 before any NAA, whatever their order; a target port's designator never counts.
        var naa5 = Convert.FromHexString("5000c50012345678");
        Assert.Equal("35000c50012345678", ScsiDesignator.ScsiIdOf([new(ScsiDesignator.Naa, 1, 0, Convert.FromHexString("3000000000000000")), new(ScsiDesignator.Naa, 1, 0, naa5)]));
        Assert.Equal("360000000000000000e00000000010001", ScsiDesignator.ScsiIdOf([new(ScsiDesignator.Naa, 1, 0, naa5), new(ScsiDesignator.Naa, 1, 0, naa6)]));
        Assert.Equal("1IET_00010001", ScsiDesignator.ScsiIdOf([new(ScsiDesignator.Naa, 1, 1, naa6), tgt[2]]));
        Assert.Equal("2001122334455667788", ScsiDesignator.ScsiIdOf([new(ScsiDesignator.Eui64, 1, 0, Convert.FromHexString("001122334455667788")), tgt[2]]));
        Assert.Equal("", ScsiDesignator.ScsiIdOf([]));

        // A PBD naming the LUN by the T10 id Corral showed before still finds it.
        var lun = new IscsiLun(1, "360000000000000000e00000000010001", "IET", "beaf11", 1L << 30, "1IET_00010001");
        Assert.True(lun.IsNamed("1IET_00010001"));
        Assert.True(lun.IsNamed("360000000000000000e00000000010001"));
        Assert.False(lun.IsNamed(""));
    }

    [Fact]
    public void Qemu_opens_an_iscsi_vdi_with_its_iscsi_driver_under_a_raw_node_bounded_to_the_extent()
    {
        var path = $"iscsi://10.0.0.5:3260/{Iqn}/1#4194304+16777216";
        Assert.Equal($",format=raw,offset=4194304,size=16777216,file.driver=iscsi,file.transport=tcp,file.portal=10.0.0.5:3260,file.target={Iqn},file.lun=1",
            QemuBlockProtocol.DriveOptions(path, "raw", "drive0-chap"));
        Assert.Null(QemuBlockProtocol.Credentials(path));
        Assert.Equal(",file=/srv/a,,b.qcow2,format=qcow2", QemuBlockProtocol.DriveOptions("/srv/a,b.qcow2", "qcow2", "drive0-chap"));

        var file = QemuBlockProtocol.For(path);
        Assert.Equal("""{"driver":"iscsi","transport":"tcp","portal":"10.0.0.5:3260","target":"iqn.2026-12.org.corral:sr","lun":1}""", file.ToJsonString());
        var format = new JsonObject { ["driver"] = "raw" };
        QemuBlockProtocol.AddExtent(format, path);
        Assert.Equal((4194304L, 16777216L), (format["offset"]!.GetValue<long>(), format["size"]!.GetValue<long>()));
        Assert.Throws<ArgumentException>(() => QemuBlockProtocol.DriveOptions($"iscsi://10.0.0.5:3260/{Iqn}/1", "raw", "drive0-chap"));
    }
}
