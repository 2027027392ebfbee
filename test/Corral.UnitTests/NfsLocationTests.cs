using Corral.Hypervisor;
using Corral.Hypervisor.Qemu;
using Corral.Storage;
using Xunit;

namespace Corral.UnitTests;

/// <summary>An NFS SR's location string and what QEMU is given for its volumes.</summary>
public class NfsLocationTests
{
    private const string Sr = "0b7d1c4e-5a8f-4c2e-9d3b-6f1a2b3c4d5e";

    [Fact]
    public void An_nfs_pbd_locates_its_sr_in_a_directory_named_after_it_under_serverpath()
    {
        var v3 = SrLocation.Of(new Dictionary<string, string> { ["server"] = "filer", ["serverpath"] = "/exports/vms/" }, Sr)!;
        Assert.Equal($"nfs://filer/exports/vms/{Sr}", v3);
        var url = NfsUrl.Parse(v3);
        Assert.Equal(("filer", "/exports/vms", Sr, 3), (url.Server, url.Export, url.SrDirectory, url.Version));
        Assert.Equal($"/{Sr}", url.DirectoryOnExport);
        Assert.Equal($"nfs://filer/exports/vms/{Sr}/a.qcow2", url.VolumeUrl("a.qcow2"));

        var v4 = SrLocation.Of(new Dictionary<string, string> { ["server"] = "filer", ["serverpath"] = "vms", ["nfsversion"] = "4.1" }, Sr)!;
        Assert.Equal($"nfs://filer/vms/{Sr}?version=4", v4);
        Assert.Equal(4, NfsUrl.Parse(v4).Version);
        // QEMU's nfs driver has no version option: the volumes' URLs carry none.
        Assert.Equal($"nfs://filer/vms/{Sr}/a.qcow2", NfsUrl.Parse(v4).VolumeUrl("a.qcow2"));

        var root = NfsUrl.Parse(SrLocation.Of(new Dictionary<string, string> { ["server"] = "filer", ["serverpath"] = "/" }, Sr)!);
        Assert.Equal(("/", $"/{Sr}"), (root.MountPath, root.DirectoryOnExport));
    }

    [Fact]
    public void A_file_sr_keeps_its_location_and_a_config_naming_neither_has_none()
    {
        Assert.Equal("/srv/sr", SrLocation.Of(new Dictionary<string, string> { ["location"] = "/srv/sr", ["server"] = "filer" }, Sr));
        Assert.Null(SrLocation.Of(new Dictionary<string, string> { ["server"] = "filer" }, Sr));
        Assert.Throws<FormatException>(() => NfsUrl.ParseVersion("2"));
        Assert.Throws<FormatException>(() => NfsUrl.ParseVersion("41"));
        Assert.Throws<FormatException>(() => NfsUrl.Parse("nfs://filer"));
        Assert.Throws<FormatException>(() => NfsUrl.Parse("/srv/sr"));
    }

    [Fact]
    public void Qemu_opens_an_nfs_volume_with_its_nfs_driver_and_a_local_one_as_a_file()
    {
        var nfs = QemuBlockProtocol.For("nfs://filer/exports/vms/sr/a.qcow2");
        Assert.Equal("nfs", (string)nfs["driver"]!);
        Assert.Equal("inet", (string)nfs["server"]!["type"]!);
        Assert.Equal("filer", (string)nfs["server"]!["host"]!);
        Assert.Equal("/exports/vms/sr/a.qcow2", (string)nfs["path"]!);
        Assert.Equal("file", (string)QemuBlockProtocol.For("/srv/sr/a.qcow2")["driver"]!);
        Assert.Throws<ArgumentException>(() => QemuBlockProtocol.For("nfs://filer/sr/a.qcow2?version=4"));

        var spec = new VmLaunchSpec("6f1c2a3b-0000-4000-8000-000000000001", "nfs", 256L << 20, 1, false,
            [new DiskSpec(0, "nfs://filer/exports/vms/sr/a.qcow2", "qcow2", false, false, true)], [], new Dictionary<string, string>());
        Assert.Contains(QemuCommandLine.Build(spec, new VmRuntimePaths("/run/vm"), "tcg"), a => a.Contains("file=nfs://filer/exports/vms/sr/a.qcow2", StringComparison.Ordinal));
        Assert.ThrowsAny<Exception>(() => QemuCommandLine.Build(spec with { Disks = [new DiskSpec(0, "sr/a.qcow2", "qcow2", false, false, true)] },
            new VmRuntimePaths("/run/vm"), "tcg"));
    }
}
