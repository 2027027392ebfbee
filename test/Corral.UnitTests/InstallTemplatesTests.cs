using Corral.Agent.Hosting;
using Corral.Agent.Vms;
using Corral.Model;
using Corral.PoolDatabase;
using Xunit;

namespace Corral.UnitTests;

/// <summary>XenServer's install templates as its generator makes them, and the boot order an HVM guest follows.</summary>
public sealed class InstallTemplatesTests
{
    private static InstallTemplates.Template Named(string name) => InstallTemplates.All.Single(t => t.Name == name);

    [Fact]
    public void The_templates_are_xenservers_by_name_uuid_and_reference_label()
    {
        Assert.Equal(13, InstallTemplates.All.Count);
        Assert.Equal(InstallTemplates.All.Count, InstallTemplates.All.Select(t => t.Uuid).Distinct().Count());
        Assert.Equal(InstallTemplates.All.Count, InstallTemplates.All.Select(t => t.Name).Distinct().Count());
        Assert.Equal("552bce37-51b2-445d-84f2-5f33fa112d7e", Named("Other install media").Uuid);
        Assert.Equal("debian-12", Named("Debian Bookworm 12").ReferenceLabel);
        Assert.Contains(InstallTemplates.All, t => t.Name == "Windows Server 2025");
    }

    [Fact]
    public void Debian_12_carries_xenservers_restrictions_disk_and_uefi()
    {
        var debian = Named("Debian Bookworm 12");
        Assert.Equal(
            "<restrictions><restriction field=\"memory-static-max\" max=\"1649267441664\"/><restriction field=\"vcpus-max\" max=\"64\"/>"
            + "<restriction field=\"has-vendor-device\" value=\"false\"/><restriction field=\"allow-gpu-passthrough\" value=\"1\"/>"
            + "<restriction field=\"allow-vgpu\" value=\"1\"/><restriction field=\"allow-network-sriov\" value=\"1\"/>"
            + "<restriction field=\"supports-bios\" value=\"yes\"/><restriction field=\"supports-uefi\" value=\"yes\"/>"
            + "<restriction field=\"supports-secure-boot\" value=\"yes\"/><restriction property=\"number-of-vbds\" max=\"255\"/>"
            + "<restriction property=\"number-of-vifs\" max=\"7\"/></restrictions>",
            debian.Recommendations);
        Assert.Equal("<provision><disk size=\"10737418240\" sr=\"\" bootable=\"true\" type=\"system\" device=\"0\"/></provision>",
            InstallTemplates.DisksXml(debian.DiskSize!.Value, debian.DiskBootable));
        Assert.Equal("uefi", debian.BootParams["firmware"]);
        Assert.Equal("cdn", debian.BootParams["order"]);
        Assert.Equal("auto", debian.Platform["secureboot"]);

        var vm = new PoolTransaction().Create(XenClasses.VMSchema);
        InstallTemplates.Fill(vm, debian, "OpaqueRef:metrics");
        Assert.Equal(1L << 30, vm.Get(XenApi.VM.MemoryStaticMin));
        Assert.Equal(2L << 30, vm.Get(XenApi.VM.MemoryStaticMax));
        Assert.True(vm.Get(XenApi.VM.IsDefaultTemplate));
        Assert.Contains("device=\"0\"", vm.Get(XenApi.VM.OtherConfig)["disks"], StringComparison.Ordinal);
    }

    [Fact]
    public void Windows_templates_use_emulated_devices_and_windows_11_wants_a_vtpm()
    {
        var eleven = Named("Windows 11");
        Assert.Equal("true", eleven.Platform["vtpm"]);
        Assert.Equal("emulated", eleven.Platform[VmDevices.DevicesPlatformKey]);
        Assert.Contains("<restriction field=\"supports-bios\" value=\"no\"/>", eleven.Recommendations, StringComparison.Ordinal);
        Assert.Contains("<restriction field=\"vcpus-min\" min=\"2\"/>", eleven.Recommendations, StringComparison.Ordinal);
        Assert.Equal(2, eleven.Vcpus);
        Assert.False(Named("Windows Server 2022 (64-bit)").Platform.ContainsKey("vtpm"));
        Assert.Null(Named("Other install media").DiskSize);
        Assert.Equal("virtio", Named("Rocky Linux 9").Platform[VmDevices.DevicesPlatformKey]);
        Assert.Equal(15L << 30, Named("Rocky Linux 9").DiskSize);
    }

    [Theory]
    [InlineData("cd", false, 0, true, 0)]
    [InlineData("cd", true, 3, true, 259)]
    [InlineData("dc", true, 3, true, 3)]
    [InlineData("dc", false, 0, true, 256)]
    [InlineData("c", true, 3, false, 259)]
    [InlineData("", false, 1, false, 1)]
    [InlineData("", false, 0, true, 0)]
    public void The_boot_order_follows_hvm_boot_params(string order, bool cd, int userdevice, bool bootable, int index)
    {
        var vm = new PoolTransaction().Create(XenClasses.VMSchema);
        vm.Set(XenApi.VM.HVMBootParams, order.Length > 0 ? new Dictionary<string, string> { ["order"] = order } : new Dictionary<string, string>());
        var (isBootable, bootIndex) = BootOrder.Of(vm, cd, userdevice, vbdBootable: false);
        Assert.Equal(bootable, isBootable);
        if (bootable)
        {
            Assert.Equal(index, bootIndex);
        }
    }
}
