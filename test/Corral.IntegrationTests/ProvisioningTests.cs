using Corral.Agent.Hosting;
using Corral.Api.Methods;
using Corral.Model;
using Corral.PoolDatabase;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>
/// XenServer's install templates provisioned as <c>xe vm-install</c> does it (a clone, its <c>other_config:disks</c>
/// pointed at an SR, <c>VM.provision</c>), against a host's real storage handlers: the disk made on the SR, the VBD at
/// its device, the request gone; a request that cannot be met leaves nothing behind.
/// </summary>
public sealed class ProvisioningTests(AgentFixture pool) : IClassFixture<AgentFixture>
{
    private static Dictionary<string, object?> Map(params (string Key, string Value)[] entries) => entries.ToDictionary(e => e.Key, e => (object?)e.Value);

    private async Task<(string Sr, string SrUuid, string Directory)> SrAsync()
    {
        var directory = Path.Combine(pool.Root, "sr-" + Guid.NewGuid().ToString("N")[..6]);
        Directory.CreateDirectory(directory);
        var sr = (string)(await pool.S("SR.create", pool.Host.Ref, Map(("location", directory)), 0L, "install SR", "", "file", "user", false, Map()))!;
        return (sr, (string)(await pool.S("SR.get_uuid", sr))!, directory);
    }

    private async Task<string> TemplateAsync(string name)
    {
        var template = InstallTemplates.All.Single(t => t.Name == name);
        var tx = new PoolTransaction();
        var metrics = tx.Create(XenClasses.VMMetricsSchema);
        var vm = tx.Create(XenClasses.VMSchema);
        InstallTemplates.Fill(vm, template, metrics.Ref);
        vm.Set(XenApi.VM.Uuid, Guid.NewGuid().ToString()); // the fixture's pool may hold the real one from another test
        await pool.Database.CommitAsync(tx, default);
        return vm.Ref;
    }

    /// <summary>xe vm-install's steps: clone, point the disks at the SR, provision.</summary>
    private async Task<string> InstallAsync(string template, string srUuid, string label)
    {
        var vm = (string)(await pool.S("VM.clone", template, label))!;
        var config = (Dictionary<string, object?>)(await pool.S("VM.get_other_config", vm))!;
        var disks = ((string)config["disks"]!).Replace("sr=\"\"", $"sr=\"{srUuid}\"", StringComparison.Ordinal);
        await pool.S("VM.remove_from_other_config", vm, "disks");
        await pool.S("VM.add_to_other_config", vm, "disks", disks);
        await pool.S("VM.provision", vm);
        return vm;
    }

    [Fact]
    public async Task A_debian_template_provisions_its_system_disk_on_the_sr_given()
    {
        var (sr, srUuid, directory) = await SrAsync();
        var vm = await InstallAsync(await TemplateAsync("Debian Bookworm 12"), srUuid, "debian");

        Assert.False((bool)(await pool.S("VM.get_is_a_template", vm))!);
        Assert.False(((Dictionary<string, object?>)(await pool.S("VM.get_other_config", vm))!).ContainsKey("disks"));
        var vbd = Assert.Single(((List<object?>)(await pool.S("VM.get_VBDs", vm))!).Cast<string>());
        var record = (Dictionary<string, object?>)(await pool.S("VBD.get_record", vbd))!;
        Assert.Equal("0", record["userdevice"]);
        Assert.Equal(true, record["bootable"]);
        Assert.Equal(false, record["unpluggable"]);
        Assert.Equal("Disk", record["type"]);
        var vdi = (string)record["VDI"]!;
        var vdiRecord = (Dictionary<string, object?>)(await pool.S("VDI.get_record", vdi))!;
        Assert.Equal(sr, vdiRecord["SR"]);
        Assert.Equal(10L << 30, vdiRecord["virtual_size"]);
        Assert.Equal("0", vdiRecord["name_label"]);
        Assert.Equal("Created by template provisioner", vdiRecord["name_description"]);
        Assert.Equal("system", vdiRecord["type"]);
        Assert.Equal((string)(await pool.S("VM.get_uuid", vm))!, ((Dictionary<string, object?>)vdiRecord["sm_config"]!)["vmhint"]);
        Assert.True(File.Exists(Path.Combine(directory, (string)vdiRecord["location"]!)));

        // Provisioned once: it is no longer a template, and xapi refuses to provision it again.
        Assert.Equal(ErrorCodes.ProvisionOnlyAllowedOnTemplate, (await pool.Fails("VM.provision", vm)).ErrorDescription[0]);
        Assert.Single(((List<object?>)(await pool.S("VM.get_VBDs", vm))!));
    }

    [Fact]
    public async Task A_request_that_cannot_be_met_leaves_nothing_behind()
    {
        var (sr, _, _) = await SrAsync();
        var template = await TemplateAsync("Windows Server 2022 (64-bit)");
        var vdisBefore = ((List<object?>)(await pool.S("SR.get_VDIs", sr))!).Count;

        var vm = (string)(await pool.S("VM.clone", template, "nowhere"))!;
        await pool.S("VM.remove_from_other_config", vm, "disks");
        await pool.S("VM.add_to_other_config", vm, "disks", InstallTemplates.DisksXml(1L << 30, false).Replace("sr=\"\"", "sr=\"0b0e6c1d-0000-4000-8000-000000000000\"", StringComparison.Ordinal));
        Assert.Equal([ErrorCodes.UuidInvalid, "sr", "0b0e6c1d-0000-4000-8000-000000000000"], (await pool.Fails("VM.provision", vm)).ErrorDescription);
        Assert.Empty((List<object?>)(await pool.S("VM.get_VBDs", vm))!);

        var garbled = (string)(await pool.S("VM.clone", template, "garbled"))!;
        await pool.S("VM.remove_from_other_config", garbled, "disks");
        await pool.S("VM.add_to_other_config", garbled, "disks", "<provision><disk size=\"lots\"/></provision>");
        Assert.Equal(ErrorCodes.InternalError, (await pool.Fails("VM.provision", garbled)).ErrorDescription[0]);
        Assert.Equal(vdisBefore, ((List<object?>)(await pool.S("SR.get_VDIs", sr))!).Count);
    }

    [Fact]
    public void Xapis_provisioning_requests_parse_in_either_attribute_order()
    {
        var disks = VmProvisioning.Parse("<provision><disk bootable=\"false\" device=\"1\" size=\"1024\" sr=\"abc\" type=\"user\"/><disk size=\"2048\" sr=\"\" bootable=\"true\" type=\"odd\" device=\"0\"/></provision>");
        Assert.Equal(new VmProvisioning.Disk("1", 1024, "abc", false, VdiType.User), disks[0]);
        Assert.Equal(new VmProvisioning.Disk("0", 2048, "", true, VdiType.System), disks[1]);
        Assert.Empty(VmProvisioning.Parse("<provision/>"));
        Assert.Throws<XenApiException>(() => VmProvisioning.Parse("<disks/>"));
        Assert.Throws<XenApiException>(() => VmProvisioning.Parse("<provision><disk device=\"0\"/></provision>"));
    }
}
