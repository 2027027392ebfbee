using System.Globalization;

namespace Corral.Api.Devices;

/// <summary>The bus a guest disk sits on, as xapi's device numbers name them.</summary>
public enum DeviceBus
{
    Xen,
    Scsi,
    Floppy,
    Ide,
}

/// <summary>
/// A guest disk device as xapi numbers them: a bus, a disk number and a partition. A VBD's <c>userdevice</c> ("0",
/// "3") and <c>device</c> ("hda", "xvdb", "d5p1") both name one; for an HVM guest disk numbers 0-3 are the IDE
/// controller's and higher ones paravirtual (Xen) disks.
/// </summary>
public readonly record struct DeviceNumber(DeviceBus Bus, int Disk, int Partition)
{
    /// <summary>The device, if the bus has that disk and partition (IDE: xapi's legacy encoding, 20 disks of 64 partitions).</summary>
    public static DeviceNumber? Make(DeviceBus bus, int disk, int partition)
    {
        var (maxDisk, maxPartition) = bus switch
        {
            DeviceBus.Xen => ((1 << 20) - 1, 15),
            DeviceBus.Scsi => (15, 15),
            DeviceBus.Floppy => (2, 0),
            _ => (19, 63),
        };
        return disk >= 0 && disk <= maxDisk && partition >= 0 && partition <= maxPartition ? new DeviceNumber(bus, disk, partition) : null;
    }

    /// <summary>A plain disk number: an HVM guest's first four are on the IDE controller.</summary>
    public static DeviceNumber? OfDiskNumber(bool hvm, int disk) => Make(hvm && disk < 4 ? DeviceBus.Ide : DeviceBus.Xen, disk, 0);

    /// <summary>A number ("3") or a Linux device name ("xvdb", "hda1", "sdc", "fda", "d5p2"); null for anything else.</summary>
    public static DeviceNumber? Parse(bool hvm, string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return int.TryParse(name, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var disk) && OfDiskNumber(hvm, disk) is { } numbered
            ? numbered
            : OfLinuxDevice(name);
    }

    /// <summary>A Linux device name: xvd/sd/fd/hd, a base-26 disk letter group and an optional partition, or d&lt;N&gt;[p&lt;M&gt;].</summary>
    public static DeviceNumber? OfLinuxDevice(string name)
    {
        foreach (var (prefix, bus) in new[] { ("xvd", DeviceBus.Xen), ("sd", DeviceBus.Scsi), ("fd", DeviceBus.Floppy), ("hd", DeviceBus.Ide) })
        {
            if (name.StartsWith(prefix, StringComparison.Ordinal))
            {
                return LettersAndPartition(name[prefix.Length..]) is var (disk, partition) ? Make(bus, disk, partition) : null;
            }
        }

        if (name.StartsWith('d'))
        {
            var p = name.IndexOf('p', StringComparison.Ordinal);
            var diskText = p < 0 ? name[1..] : name[1..p];
            var partitionText = p < 0 ? "0" : name[(p + 1)..];
            return Digits(diskText) is { } disk && Digits(partitionText) is { } partition ? Make(DeviceBus.Xen, disk, partition) : null;
        }

        return null;
    }

    /// <summary>"ab12": disk "ab" (base 26 counted from a = 0: z is 25, aa 26) and partition 12.</summary>
    private static (int Disk, int Partition)? LettersAndPartition(string text)
    {
        var letters = 0;
        while (letters < text.Length && text[letters] is >= 'a' and <= 'z')
        {
            letters++;
        }

        if (letters == 0)
        {
            return null;
        }

        long value = 0;
        foreach (var c in text[..letters])
        {
            value = (value * 26) + (c - 'a' + 1);
            if (value > int.MaxValue)
            {
                return null;
            }
        }

        var rest = text[letters..];
        var partition = rest.Length == 0 ? 0 : Digits(rest);
        return partition is null ? null : ((int)value - 1, partition.Value);
    }

    private static int? Digits(string text) =>
        text.Length > 0 && text.All(char.IsAsciiDigit) && int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : null;

    /// <summary>The base-26 letters Linux gives a disk number: 0 is a, 25 z, 26 aa.</summary>
    public static string Letters(int disk)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(disk);
        var high = (disk / 26) - 1;
        var low = (char)('a' + (disk % 26));
        return (high < 0 ? "" : Letters(high)) + low;
    }
}

/// <summary>Which device numbers a VM's new disks and network cards may take, as xapi works them out for an HVM guest.</summary>
public static class DeviceNumbers
{
    /// <summary>The highest disk number of an HVM guest (xapi's allowed range is 0-254).</summary>
    public const int MaxVbdDevice = 254;

    /// <summary>The highest network card number of an HVM guest (0-15).</summary>
    public const int MaxVifDevice = 15;

    /// <summary>Every device a name may mean (read as an HVM and as a PV guest's), so that "1", "hdb" and "xvdb" clash as they should.</summary>
    public static IReadOnlyList<DeviceNumber> PossibleDevices(string name) =>
        new[] { DeviceNumber.Parse(true, name), DeviceNumber.Parse(false, name) }.Where(d => d is not null).Select(d => d!.Value).Distinct().ToList();

    /// <summary>The devices the VM's VBDs use, by their <c>device</c> and <c>userdevice</c> both.</summary>
    public static IReadOnlySet<DeviceNumber> Used(IEnumerable<(string Device, string Userdevice)> vbds) =>
        vbds.SelectMany(v => PossibleDevices(v.Device).Concat(PossibleDevices(v.Userdevice))).ToHashSet();

    /// <summary><c>VM.get_allowed_VBD_devices</c>: the disk numbers 0-254 of an HVM guest not used by any of its VBDs.</summary>
    public static IReadOnlyList<string> AllowedVbdDevices(IEnumerable<(string Device, string Userdevice)> vbds)
    {
        var used = Used(vbds);
        return Enumerable.Range(0, MaxVbdDevice + 1)
            .Select(n => DeviceNumber.OfDiskNumber(true, n))
            .Where(d => d is not null && !used.Contains(d.Value))
            .Select(d => d!.Value.Disk.ToString(CultureInfo.InvariantCulture))
            .ToList();
    }

    /// <summary><c>VM.get_allowed_VIF_devices</c>: the card numbers 0-15 no VIF of the VM has.</summary>
    public static IReadOnlyList<string> AllowedVifDevices(IEnumerable<string> usedDevices)
    {
        var used = usedDevices.ToHashSet(StringComparer.Ordinal);
        return Enumerable.Range(0, MaxVifDevice + 1).Select(n => n.ToString(CultureInfo.InvariantCulture)).Where(d => !used.Contains(d)).ToList();
    }

    /// <summary>
    /// The disk number a VBD's <c>userdevice</c> stands for ("2", "xvdc", "hdc" all give 2); null for a name that is none
    /// (not a number, or on no bus).
    /// </summary>
    public static int? DiskIndex(string userdevice) =>
        DeviceNumber.Parse(true, userdevice) is { Partition: 0 } device ? device.Disk : null;
}
