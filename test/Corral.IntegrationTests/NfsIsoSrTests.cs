using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Xunit;
using static Corral.IntegrationTests.AgentFixtureSrs;

namespace Corral.IntegrationTests;

/// <summary>
/// An ISO library on an NFS share (<c>type=iso device-config:location=server:/path</c>, as XenServer's), on a real
/// nfs-ganesha on loopback, run by a real agent's storage handlers: nothing is mounted on the host; the share is read
/// through libnfs (its images become VDIs with their sizes) and each image is what QEMU opens with its nfs driver.
/// A path that is not there is SM's ISO mount error, and no SR is made.
/// </summary>
public sealed class NfsIsoSrTests(AgentFixture pool) : IClassFixture<AgentFixture>
{
    [Fact]
    public async Task An_iso_library_on_an_nfs_share_lists_its_images_as_vdis_that_qemu_reads_from_the_server()
    {
        await using var nfs = await NfsRig.StartAsync();
        var isos = Directory.CreateDirectory(Path.Combine(nfs.ExportDirectory, "isos")).FullName;
        var image = Enumerable.Range(0, 1 << 20).Select(i => (byte)(i * 13)).ToArray();
        await File.WriteAllBytesAsync(Path.Combine(isos, "installer.iso"), image);
        await File.WriteAllTextAsync(Path.Combine(isos, "notes.txt"), "not an image");
        var location = $"{NfsRig.Server}:{isos}";

        var missing = await pool.Fails("SR.create", pool.Host.Ref, Map(("location", $"{NfsRig.Server}:{nfs.ExportDirectory}/nothing")), 0L, "missing", "", "iso", "iso", true, Map());
        Assert.Equal("SR_BACKEND_FAILURE_222", missing.Code);
        Assert.Empty((List<object?>)(await pool.S("SR.get_by_name_label", "missing"))!);

        var sr = (string)(await pool.S("SR.create", pool.Host.Ref, Map(("location", location)), 0L, "ISOs on NFS", "the share", "iso", "iso", true, Map()))!;
        var pbd = await pool.MyPbdAsync(sr);
        Assert.True((bool)(await pool.S("PBD.get_currently_attached", pbd))!);
        await pool.S("SR.scan", sr);
        var iso = Assert.Single(((List<object?>)(await pool.S("SR.get_VDIs", sr))!).Cast<string>());
        Assert.Equal("installer.iso", await pool.S("VDI.get_location", iso));
        Assert.Equal((long)image.Length, await pool.S("VDI.get_virtual_size", iso));
        Assert.True((long)(await pool.S("SR.get_physical_size", sr))! > 0);

        // What QEMU opens for the VDI: an nfs:// URL, whose bytes, read by QEMU's own nfs driver, are the server's.
        var (url, format) = pool.Services.GetRequiredService<Corral.Storage.SrDrivers>().Get("iso").Resolve(location, "installer.iso");
        Assert.Equal($"nfs://{NfsRig.Server}{isos}/installer.iso", url);
        Assert.Equal("raw", format);
        var copy = Path.Combine(Path.GetTempPath(), $"corral-nfs-iso-{Guid.NewGuid():N}.raw");
        try
        {
            using var convert = Process.Start("qemu-img", ["convert", "-f", "raw", "-O", "raw", url, copy])!;
            await convert.WaitForExitAsync();
            Assert.Equal(0, convert.ExitCode);
            Assert.Equal(image, await File.ReadAllBytesAsync(copy));
        }
        finally
        {
            File.Delete(copy);
        }

        // Nothing was ever mounted on the host; the PBD plugs again.
        Assert.DoesNotContain(File.ReadLines("/proc/self/mountinfo"), l => l.Contains(isos, StringComparison.Ordinal));
        await pool.S("PBD.unplug", pbd);
        await pool.S("PBD.plug", pbd);
        await pool.S("PBD.unplug", pbd);
        await pool.S("SR.forget", sr);
    }
}
