using Corral.Api.Devices;
using Xunit;

namespace Corral.UnitTests.Devices;

/// <summary>Device numbers as xapi reads and allots them (its device_number tests' cases, and VM.get_allowed_*_devices).</summary>
public sealed class DeviceNumbersTests
{
    [Theory]
    [InlineData("xvda", DeviceBus.Xen, 0, 0)]
    [InlineData("xvda1", DeviceBus.Xen, 0, 1)]
    [InlineData("hda", DeviceBus.Ide, 0, 0)]
    [InlineData("hda1", DeviceBus.Ide, 0, 1)]
    [InlineData("sda", DeviceBus.Scsi, 0, 0)]
    [InlineData("sdb3", DeviceBus.Scsi, 1, 3)]
    [InlineData("hdc2", DeviceBus.Ide, 2, 2)]
    [InlineData("xvdaa", DeviceBus.Xen, 26, 0)]
    [InlineData("hde", DeviceBus.Ide, 4, 0)]
    [InlineData("hdp", DeviceBus.Ide, 15, 0)]
    [InlineData("fdb", DeviceBus.Floppy, 1, 0)]
    [InlineData("d536p3", DeviceBus.Xen, 536, 3)]
    public void Linux_device_names_read_as_xapi_reads_them(string name, DeviceBus bus, int disk, int partition) =>
        Assert.Equal(new DeviceNumber(bus, disk, partition), DeviceNumber.OfLinuxDevice(name));

    [Theory]
    [InlineData("d0", "xvda")]
    [InlineData("d0", "0")]
    [InlineData("d5", "5")]
    [InlineData("xvdf", "5")]
    [InlineData("d0p0", "xvda")]
    [InlineData("d536p3", "xvdtq3")]
    public void Equivalent_names_mean_one_device_for_a_pv_guest(string a, string b) =>
        Assert.Equal(DeviceNumber.Parse(false, a), DeviceNumber.Parse(false, b));

    [Theory]
    [InlineData("d0p0q")]
    [InlineData("xvda16")]
    [InlineData("vda")]
    [InlineData("xvd")]
    [InlineData("hdu")]
    [InlineData("fdd")]
    [InlineData("")]
    [InlineData("-1")]
    public void Names_of_no_device_are_refused(string name) => Assert.Null(DeviceNumber.Parse(true, name));

    [Fact]
    public void An_hvm_guests_first_four_disks_are_on_the_ide_controller()
    {
        Assert.Equal(new DeviceNumber(DeviceBus.Ide, 3, 0), DeviceNumber.Parse(true, "3"));
        Assert.Equal(new DeviceNumber(DeviceBus.Xen, 4, 0), DeviceNumber.Parse(true, "4"));
        Assert.Equal(new DeviceNumber(DeviceBus.Xen, 3, 0), DeviceNumber.Parse(false, "3"));
        Assert.Equal(["a", "z", "aa", "tq"], new[] { 0, 25, 26, 536 }.Select(DeviceNumber.Letters));
    }

    [Fact]
    public void A_vm_without_disks_may_take_every_disk_number_of_an_hvm_guest()
    {
        var allowed = DeviceNumbers.AllowedVbdDevices([]);
        Assert.Equal(255, allowed.Count);
        Assert.Equal("0", allowed[0]);
        Assert.Equal("254", allowed[^1]);
    }

    [Fact]
    public void Used_userdevices_and_the_devices_the_guest_names_are_left_out()
    {
        // Disk 0 seen by the guest as hda, a CD at 3 that the guest calls hdb (the IDE controller's second slot): the
        // name blocks disk 1 too, as it does in xapi. A virtio disk's name (vdb) is no device xapi reads.
        var allowed = DeviceNumbers.AllowedVbdDevices([("hda", "0"), ("hdb", "3"), ("vdb", "5")]);
        Assert.Equal(["2", "4", "6"], allowed.Take(3));
        Assert.DoesNotContain("5", allowed);
        Assert.Equal(251, allowed.Count);

        // A Linux name in userdevice blocks the number it means (above 3, where an HVM guest's disks are Xen disks too).
        Assert.DoesNotContain("6", DeviceNumbers.AllowedVbdDevices([("", "xvdg")]));
    }

    [Fact]
    public void Network_cards_take_the_numbers_0_to_15_no_vif_has()
    {
        Assert.Equal(16, DeviceNumbers.AllowedVifDevices([]).Count);
        Assert.Equal(["1", "3", "4"], DeviceNumbers.AllowedVifDevices(["0", "2"]).Take(3));
        Assert.Equal("15", DeviceNumbers.AllowedVifDevices(["0", "2"])[^1]);
    }

    [Theory]
    [InlineData("2", 2)]
    [InlineData("xvdc", 2)]
    [InlineData("hdc", 2)]
    [InlineData("40", 40)]
    [InlineData("hda1", null)]
    [InlineData("autodetect", null)]
    [InlineData("-1", null)]
    public void A_userdevice_stands_for_a_disk_number(string userdevice, int? index) =>
        Assert.Equal(index, DeviceNumbers.DiskIndex(userdevice));
}
