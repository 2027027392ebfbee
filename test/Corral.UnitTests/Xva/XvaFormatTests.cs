using System.Formats.Tar;
using System.Text;
using Corral.Api.Xva;
using Corral.Model;
using Xunit;

namespace Corral.UnitTests.Xva;

/// <summary>The XVA writer and reader: xapi's member layout, chunk skipping, checksums, compression, and bad archives refused.</summary>
public sealed class XvaFormatTests
{
    private const int MiB = 1024 * 1024;

    private static XvaHeader Header(long diskSize) => new(
        new XvaVersion("host-a", "2026-12-05", "8.4.0", "XenServer", "corral", 2, 21, 2),
        [
            new XvaObject("VM", "Ref:0", new Dictionary<string, object?>
            {
                ["uuid"] = "8c1f5e2a-0000-4000-8000-000000000001", ["name_label"] = "exported <&> vm", ["VCPUs_max"] = 2L, ["is_a_template"] = false,
                ["NVRAM"] = new Dictionary<string, object?> { ["EFI-variables"] = "AAEC" }, ["VBDs"] = new List<object?> { "Ref:1" },
                ["snapshot_time"] = XenDateTime.Epoch,
            }),
            new XvaObject("VDI", "Ref:2", new Dictionary<string, object?> { ["virtual_size"] = diskSize, ["SR"] = "Ref:3" }),
        ]);

    /// <summary>A disk of 3.5 MiB: data in chunk 0 and chunk 2, chunk 1 zeros, data in the short last chunk.</summary>
    private static byte[] Disk()
    {
        var disk = new byte[(3 * MiB) + (MiB / 2)];
        Encoding.ASCII.GetBytes("first chunk").CopyTo(disk, 0);
        Encoding.ASCII.GetBytes("third chunk").CopyTo(disk, (2 * MiB) + 12345);
        disk[^1] = 0x5a;
        return disk;
    }

    private static async Task<byte[]> WriteAsync(XvaHeader header, byte[] disk, XvaCompression compression)
    {
        using var output = new MemoryStream();
        await using (var writer = new XvaWriter(output, compression))
        {
            await writer.WriteHeaderAsync(header, default);
            await writer.WriteDiskAsync("Ref:2", new MemoryStream(disk), disk.Length, default);
        }

        return output.ToArray();
    }

    private static async Task<List<string>> MemberNamesAsync(byte[] archive)
    {
        var names = new List<string>();
        await using var tar = new TarReader(new MemoryStream(archive));
        while (await tar.GetNextEntryAsync() is { } entry)
        {
            names.Add(entry.Name);
        }

        return names;
    }

    private static async Task<byte[]> ReadDiskAsync(byte[] archive, long size, bool force = false)
    {
        await using var reader = await XvaReader.OpenAsync(new MemoryStream(archive), default);
        var target = new MemoryStream(new byte[size]);
        await reader.ReadDiskAsync("Ref:2", size, target, force, default);
        return target.ToArray();
    }

    [Fact]
    public async Task An_archive_is_ova_xml_then_the_disk_chunks_with_their_xxhash_zero_chunks_left_out_but_the_first_and_last()
    {
        var disk = Disk();
        var archive = await WriteAsync(Header(disk.Length), disk, XvaCompression.None);

        Assert.Equal(
            ["ova.xml", "Ref:2/00000000", "Ref:2/00000000.xxhash", "Ref:2/00000002", "Ref:2/00000002.xxhash", "Ref:2/00000003", "Ref:2/00000003.xxhash"],
            await MemberNamesAsync(archive));
        Assert.Equal(disk, await ReadDiskAsync(archive, disk.Length));
    }

    [Fact]
    public async Task A_disk_of_zeros_still_has_its_first_and_last_chunk()
    {
        var disk = new byte[3 * MiB];
        var archive = await WriteAsync(Header(disk.Length), disk, XvaCompression.None);
        Assert.Equal(["ova.xml", "Ref:2/00000000", "Ref:2/00000000.xxhash", "Ref:2/00000002", "Ref:2/00000002.xxhash"], await MemberNamesAsync(archive));
        Assert.Equal(disk, await ReadDiskAsync(archive, disk.Length));
    }

    [Fact]
    public async Task Ova_xml_is_a_bare_xml_rpc_struct_of_version_and_objects_that_reads_back_the_same()
    {
        var disk = Disk();
        var archive = await WriteAsync(Header(disk.Length), disk, XvaCompression.None);
        await using var reader = await XvaReader.OpenAsync(new MemoryStream(archive), default);

        var header = reader.Header;
        Assert.Equal(Header(disk.Length).Version, header.Version);
        var vm = header.Objects[0];
        Assert.Equal(("VM", "Ref:0"), (vm.Class, vm.Id));
        Assert.Equal("exported <&> vm", vm.Snapshot["name_label"]);
        Assert.Equal("2", vm.Snapshot["VCPUs_max"]); // ints travel as strings, as xapi writes them
        Assert.Equal(false, vm.Snapshot["is_a_template"]);
        Assert.Equal("AAEC", ((IDictionary<string, object?>)vm.Snapshot["NVRAM"]!)["EFI-variables"]);
        Assert.Equal(["Ref:1"], ((IEnumerable<object?>)vm.Snapshot["VBDs"]!).Cast<string>());
        Assert.StartsWith("<value><struct><member><name>version</name>", header.ToXml(), StringComparison.Ordinal);
    }

    [Fact]
    public void Chunk_checksums_are_xapis_xxh64_in_upper_case_hex_and_sha1_for_older_exports()
    {
        // XXH64 of nothing, seed 0 (the reference vector), and SHA-1 of "abc".
        Assert.Equal("EF46DB3751D8E999", XvaFormat.XxHash([]));
        Assert.Equal("a9993e364706816aba3e25717850c26c9cd0d89d", XvaFormat.Sha1("abc"u8));
    }

    [Fact]
    public async Task A_chunk_whose_checksum_fails_is_refused_unless_forced()
    {
        var chunk = new byte[MiB];
        chunk[7] = 1;
        var archive = await ArchiveAsync(("Ref:2/00000000", chunk), ("Ref:2/00000000.xxhash", Encoding.ASCII.GetBytes("0123456789ABCDEF")));

        var error = await Assert.ThrowsAsync<XenApiException>(() => ReadDiskAsync(archive, MiB));
        Assert.Equal(ErrorCodes.ImportErrorGeneric, error.Code);
        Assert.Contains("Block Ref:2/00000000 checksum failed", error.Parameters[0], StringComparison.Ordinal);
        Assert.Equal(chunk, await ReadDiskAsync(archive, MiB, force: true));
    }

    [Fact]
    public async Task An_older_exports_sha1_checksum_members_are_accepted()
    {
        var chunk = new byte[MiB];
        chunk[^1] = 9;
        var archive = await ArchiveAsync(("Ref:2/00000000", chunk), ("Ref:2/00000000.checksum", Encoding.ASCII.GetBytes(XvaFormat.Sha1(chunk))));
        Assert.Equal(chunk, await ReadDiskAsync(archive, MiB));
    }

    [Fact]
    public async Task A_truncated_archive_is_a_premature_end_of_file()
    {
        var disk = Disk();
        var archive = await WriteAsync(Header(disk.Length), disk, XvaCompression.None);
        var cut = archive[..(archive.Length / 2)];

        var error = await Assert.ThrowsAsync<XenApiException>(() => ReadDiskAsync(cut, disk.Length));
        Assert.Equal(ErrorCodes.ImportErrorPrematureEof, error.Code);
        var empty = await Assert.ThrowsAsync<XenApiException>(() => XvaReader.OpenAsync(new MemoryStream(), default));
        Assert.Equal(ErrorCodes.ImportErrorPrematureEof, empty.Code);
    }

    [Fact]
    public async Task An_archive_not_starting_with_ova_xml_is_an_unexpected_file()
    {
        var archive = await ArchiveAsync(("Ref:2/00000000", new byte[16]));
        var error = await Assert.ThrowsAsync<XenApiException>(async () => await XvaReader.OpenAsync(await Reordered(archive), default));
        Assert.Equal((ErrorCodes.ImportErrorUnexpectedFile, "ova.xml", "Ref:2/00000000"), (error.Code, error.Parameters[0], error.Parameters[1]));
    }

    [Theory]
    [InlineData(XvaCompression.Gzip, new byte[] { 0x1f, 0x8b })]
    [InlineData(XvaCompression.Zstd, new byte[] { 0x28, 0xb5, 0x2f, 0xfd })]
    public async Task A_compressed_archive_is_told_by_its_magic_bytes_and_reads_back(XvaCompression compression, byte[] magic)
    {
        var disk = Disk();
        var archive = await WriteAsync(Header(disk.Length), disk, compression);

        Assert.Equal(magic, archive[..magic.Length]);
        Assert.True(archive.Length < disk.Length / 10);
        await using var reader = await XvaReader.OpenAsync(new MemoryStream(archive), default);
        Assert.Equal(compression, reader.Compression);
        var target = new MemoryStream(new byte[disk.Length]);
        await reader.ReadDiskAsync("Ref:2", disk.Length, target, force: false, default);
        Assert.Equal(disk, target.ToArray());
    }

    [Fact]
    public void An_archive_of_a_newer_xapi_is_refused_as_xapi_refuses_it()
    {
        var ours = XvaVersion.Current("h");
        Assert.Equal(XenServerVersion.XapiVersion, $"{ours.XapiMajor}.{ours.XapiMinor}");
        ours.AssertImportable();
        (ours with { XapiMajor = 1, XapiMinor = 9 }).AssertImportable(); // XenServer 7.1's
        Assert.Equal(ErrorCodes.ImportIncompatibleVersion, Assert.Throws<XenApiException>(() => (ours with { XapiMinor = ours.XapiMinor + 1 }).AssertImportable()).Code);
        Assert.Equal(ErrorCodes.ImportIncompatibleVersion, Assert.Throws<XenApiException>(() => (ours with { XapiMajor = ours.XapiMajor + 1, XapiMinor = 0 }).AssertImportable()).Code);
    }

    [Fact]
    public void Malformed_ova_xml_is_an_import_error()
    {
        Assert.Equal(ErrorCodes.ImportErrorGeneric, Assert.Throws<XenApiException>(() => XvaHeader.Parse("<value><string>x</string></value>")).Code);
        Assert.Equal(ErrorCodes.ImportErrorGeneric, Assert.Throws<XenApiException>(() => XvaHeader.Parse("not xml")).Code);
        Assert.Equal(ErrorCodes.ImportErrorGeneric,
            Assert.Throws<XenApiException>(() => XvaHeader.Parse("<value><struct><member><name>objects</name><value><array><data/></array></value></member></struct></value>")).Code);
    }

    /// <summary>An archive of ova.xml (a 1 MiB disk's header) and the members given, written by hand.</summary>
    private static async Task<byte[]> ArchiveAsync(params (string Name, byte[] Data)[] members)
    {
        using var output = new MemoryStream();
        await using (var tar = new TarWriter(output, TarEntryFormat.Ustar, leaveOpen: true))
        {
            foreach (var (name, data) in members.Prepend(("ova.xml", Encoding.UTF8.GetBytes(Header(MiB).ToXml()))))
            {
                await tar.WriteEntryAsync(new UstarTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(data) });
            }
        }

        return output.ToArray();
    }

    /// <summary>The archive without its first member (ova.xml).</summary>
    private static async Task<MemoryStream> Reordered(byte[] archive)
    {
        var output = new MemoryStream();
        await using (var writer = new TarWriter(output, TarEntryFormat.Ustar, leaveOpen: true))
        {
            await using var reader = new TarReader(new MemoryStream(archive));
            while (await reader.GetNextEntryAsync(copyData: true) is { } entry)
            {
                if (entry.Name != "ova.xml")
                {
                    await writer.WriteEntryAsync(entry);
                }
            }
        }

        output.Position = 0;
        return output;
    }
}
