using Corral.Model;

namespace Corral.Agent.Vms;

/// <summary>
/// Which of a VM's drives the firmware may boot from, and in what order, as XenServer decides it for an HVM guest:
/// <c>HVM_boot_params:order</c>, a string of <c>c</c> (the disks), <c>d</c> (the CD drives) and <c>n</c> (the
/// network), first to last; within a kind, by userdevice. A VM without an order boots from its bootable VBDs and its
/// first disk, as Corral's VMs always have.
/// </summary>
public static class BootOrder
{
    public const string OrderKey = "order";

    /// <summary>Whether the drive is a boot candidate, and its place among them (QEMU's bootindex).</summary>
    public static (bool Bootable, int Index) Of(XenObject vm, bool isCdrom, int userdevice, bool vbdBootable)
    {
        ArgumentNullException.ThrowIfNull(vm);
        if (vm.Get(XenApi.VM.HVMBootParams).GetValueOrDefault(OrderKey) is not { Length: > 0 } order)
        {
            return (vbdBootable || userdevice == 0, userdevice);
        }

        var position = order.ToLowerInvariant().IndexOf(isCdrom ? 'd' : 'c', StringComparison.Ordinal);
        return (position >= 0, (position * 256) + userdevice);
    }
}
