using System.Xml.Linq;
using Corral.Api.Methods;
using Corral.Storage;
using Xunit;

namespace Corral.UnitTests.Devices;

/// <summary>SR.probe's document and SR.probe_ext's records as xapi writes them; the SR metadata file that lets an SR be introduced again.</summary>
public sealed class SrProbeTests
{
    [Fact]
    public void Probe_answers_xapis_srlist_document()
    {
        var xml = SrProbeXml.Format([new ProbedSr("3f2a0c1e-0000-4000-8000-00000000000a", "Shared <VMs> & more", "", 1000, 400)]);
        Assert.Equal(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<SRlist><SR><size>1000</size><name_label>Shared &lt;VMs&gt; &amp; more</name_label>"
            + "<name_description></name_description><UUID>3f2a0c1e-0000-4000-8000-00000000000a</UUID></SR></SRlist>\n",
            xml);
        var parsed = XDocument.Parse(xml);
        Assert.Equal("Shared <VMs> & more", parsed.Root!.Element("SR")!.Element("name_label")!.Value);
        Assert.Equal("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<SRlist></SRlist>\n", SrProbeXml.Format([]));
    }

    [Fact]
    public void Probe_ext_gives_one_record_per_sr_found_or_a_complete_configuration_where_none_is()
    {
        var config = new Dictionary<string, string> { ["location"] = "/srv/sr" };
        var found = (Dictionary<string, object?>)Assert.Single(SrRecordMethods.ProbeResults(config, [new ProbedSr("u1", "SR one", "d", 1000, 400)]))!;
        Assert.True((bool)found["complete"]!);
        Assert.Equal("/srv/sr", ((Dictionary<string, object?>)found["configuration"]!)["location"]);
        var stat = (Dictionary<string, object?>)Assert.Single((List<object?>)found["sr"]!)!;
        Assert.Equal(["u1"], (List<object?>)stat["uuid"]!); // an option: a set of none or one
        Assert.Equal(400L, stat["free_space"]);
        Assert.Equal(1000L, stat["total_space"]);
        Assert.Equal("healthy", stat["health"]);

        var none = (Dictionary<string, object?>)Assert.Single(SrRecordMethods.ProbeResults(config, []))!;
        Assert.True((bool)none["complete"]!);
        Assert.Empty((List<object?>)none["sr"]!);
    }

    [Fact]
    public async Task The_metadata_file_keeps_the_sr_and_its_vdis_and_refuses_what_is_not_one()
    {
        var directory = Directory.CreateTempSubdirectory("corral-srmeta-").FullName;
        try
        {
            Assert.Null(await SrMetadataFile.ReadAsync(directory, default));
            var metadata = new SrMetadata(new SrMetadataSr("u1", "SR", "desc", "file", "user", true),
                [new SrMetadataVdi("v1.qcow2", "v1", "root", "the root disk", "system", false, false, new Dictionary<string, string> { ["k"] = "v" })]);
            await SrMetadataFile.WriteAsync(directory, metadata, default);
            await SrMetadataFile.WriteAsync(directory, metadata, default); // replaces, leaves no temporary file
            Assert.Equal([SrMetadataFile.PathIn(directory)], Directory.GetFiles(directory));
            var read = (await SrMetadataFile.ReadAsync(directory, default))!;
            Assert.Equal(metadata.Sr, read.Sr);
            var vdi = read.Find("v1.qcow2")!;
            Assert.Equal(("v1", "root", "the root disk", "system"), (vdi.Uuid, vdi.NameLabel, vdi.NameDescription, vdi.Type));
            Assert.Equal("v", vdi.OtherConfig["k"]);
            Assert.Null(read.Find("v2.qcow2"));

            await File.WriteAllTextAsync(SrMetadataFile.PathIn(directory), "not json");
            await Assert.ThrowsAsync<InvalidDataException>(() => SrMetadataFile.ReadAsync(directory, default));
            await File.WriteAllTextAsync(SrMetadataFile.PathIn(directory), "{\"format\":1}");
            await Assert.ThrowsAsync<InvalidDataException>(() => SrMetadataFile.ReadAsync(directory, default));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
