using System.Globalization;

namespace Corral.Hypervisor.Qemu;

/// <summary>
/// Where each device of a VM sits on the guest's PCI bus (the i440fx machine has one bus of 32 slots: 0 is the host
/// bridge, 1 the PIIX chipset with its IDE controller, 2 the display). Every PCI device gets an explicit slot, because
/// a live migration's destination must rebuild exactly the source's bus: a disk plugged into a running VM takes the
/// lowest free slot, wherever that is, and the destination's command line must put it there too.
/// Devices without a slot take the lowest free ones in the order QEMU itself fills the bus from the command line
/// (the guest agent's channel, the virtio disks by index, the network cards by index), which is also where a VM
/// started before slots were recorded has them.
/// </summary>
public static class PciLayout
{
    /// <summary>The first slot free for Corral's devices (after the host bridge, the chipset and the display).</summary>
    public const int FirstSlot = 3;

    public const int LastSlot = 31;

    /// <summary>The guest agent's virtio-serial controller of a paravirtual VM: the first device QEMU places.</summary>
    public const int GuestAgentSlot = FirstSlot;

    /// <summary>A disk is a PCI device when it is a virtio disk; CD drives and an emulated VM's disks are on the IDE controller.</summary>
    public static bool IsPci(DiskSpec disk, bool paravirtual) => paravirtual && !disk.IsCdrom;

    /// <summary>QEMU's <c>addr=</c> value for a slot (function 0).</summary>
    public static string Address(int slot) => "0x" + slot.ToString("x", CultureInfo.InvariantCulture);

    /// <summary>
    /// The spec with a slot for every PCI device: slots given are kept (they are checked), the others are filled in
    /// QEMU's command-line order. Disks on the IDE controller lose any slot they were given.
    /// </summary>
    /// <exception cref="VmStartException">A slot is out of range or used twice, or the bus is full.</exception>
    public static VmLaunchSpec Assign(VmLaunchSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var used = new HashSet<int> { GuestAgentSlot };

        void Claim(int slot, string what)
        {
            if (slot is < FirstSlot or > LastSlot || !used.Add(slot))
            {
                throw new VmStartException($"{what}: PCI slot {slot} is out of {FirstSlot}-{LastSlot} or already taken");
            }
        }

        foreach (var disk in spec.Disks.Where(d => IsPci(d, spec.Paravirtual) && d.PciSlot is not null))
        {
            Claim(disk.PciSlot!.Value, $"disk {disk.Index}");
        }

        foreach (var nic in spec.Nics.Where(n => n.PciSlot is not null))
        {
            Claim(nic.PciSlot!.Value, $"network card {nic.Index}");
        }

        int Next(string what)
        {
            var free = NextFree(used) ?? throw new VmStartException($"{what}: no PCI slot left (the bus takes {LastSlot - FirstSlot + 1} devices)");
            used.Add(free);
            return free;
        }

        var disks = spec.Disks.OrderBy(d => d.Index)
            .Select(d => !IsPci(d, spec.Paravirtual) ? d with { PciSlot = null } : d.PciSlot is null ? d with { PciSlot = Next($"disk {d.Index}") } : d)
            .ToList();
        var nics = spec.Nics.OrderBy(n => n.Index)
            .Select(n => n.PciSlot is null ? n with { PciSlot = Next($"network card {n.Index}") } : n)
            .ToList();
        return spec with { Disks = disks, Nics = nics };
    }

    /// <summary>The lowest slot no device of <paramref name="spec"/> uses, for a device plugged in now; null when the bus is full.</summary>
    public static int? NextFree(VmLaunchSpec spec)
    {
        var used = spec.Disks.Where(d => d.PciSlot is not null).Select(d => d.PciSlot!.Value)
            .Concat(spec.Nics.Where(n => n.PciSlot is not null).Select(n => n.PciSlot!.Value))
            .ToHashSet();
        used.Add(GuestAgentSlot);

        return NextFree(used);
    }

    private static int? NextFree(HashSet<int> used)
    {
        for (var slot = FirstSlot; slot <= LastSlot; slot++)
        {
            if (!used.Contains(slot))
            {
                return slot;
            }
        }

        return null;
    }
}
