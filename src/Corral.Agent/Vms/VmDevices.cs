using System.Globalization;
using Corral.Agent.Hosting;
using Corral.Agent.Storage;
using Corral.Api.Devices;
using Corral.Hypervisor;
using Corral.Model;
using Corral.Networking;
using Corral.PoolDatabase;
using Corral.Storage;

namespace Corral.Agent.Vms;

/// <summary>
/// A VM's devices on this host: its VBDs as disks (their VDIs resolved through this host's PBDs), its VIFs as network
/// cards (their taps made on this host's bridges), and the pool database kept in step with what the VM's process has:
/// <c>currently_attached</c>, the guest's name for each disk (<c>device</c>), and each device's PCI slot in its
/// <c>runtime_properties</c>, which a live migration's destination needs to rebuild the VM's bus.
/// </summary>
public sealed class VmDevices(IPoolDatabase database, HostIdentity identity, BridgeNetworking networking, SrDrivers drivers, ILogger<VmDevices> logger)
{
    /// <summary>The key of VBD and VIF <c>runtime_properties</c> that holds the device's PCI slot while it is attached.</summary>
    public const string PciSlotKey = "corral-pci-slot";

    /// <summary>Key of <c>VM.platform</c> choosing the device model: "virtio" (default) or "emulated".</summary>
    public const string DevicesPlatformKey = "corral-devices";

    public static bool IsParavirtual(XenObject vm) => vm.Get(XenApi.VM.Platform).GetValueOrDefault(DevicesPlatformKey, "virtio") != "emulated";

    /// <summary>
    /// The launch spec of a VM on this host. For a start, every device, placed afresh; for a live migration's destination
    /// (<paramref name="attachedOnly"/>), the devices attached now, each at the PCI slot it has on the source.
    /// </summary>
    /// <param name="diskOverrides">VBD ref to the image QEMU opens instead of the VBD's VDI (a storage migration's new copies).</param>
    public async Task<VmLaunchSpec> BuildSpecAsync(XenObject vm, long domid, bool attachedOnly, CancellationToken cancellationToken,
        IReadOnlyDictionary<string, (string Path, string Format)>? diskOverrides = null)
    {
        var disks = new List<DiskSpec>();
        foreach (var vbdRef in vm.Get(XenApi.VM.VBDs))
        {
            var vbd = await database.GetAsync(XenClasses.VBD, vbdRef, cancellationToken);
            if (!attachedOnly || vbd.Get(XenApi.VBD.CurrentlyAttached))
            {
                disks.Add(await DiskAsync(vm, vbd, attachedOnly ? RecordedSlot(vbd) : null, cancellationToken, diskOverrides?.GetValueOrDefault(vbdRef)));
            }
        }

        var nics = new List<NicSpec>();
        foreach (var vifRef in vm.Get(XenApi.VM.VIFs))
        {
            var vif = await database.GetAsync(XenClasses.VIF, vifRef, cancellationToken);
            if (!attachedOnly || vif.Get(XenApi.VIF.CurrentlyAttached))
            {
                nics.Add(await NicAsync(vif, domid, cancellationToken) with { PciSlot = attachedOnly ? RecordedSlot(vif) : null });
            }
        }

        // Guest configuration travels as XenServer's vm-data does: xenstore_data keys under vm-data/.
        var firmware = vm.Get(XenApi.VM.XenstoreData)
            .Where(kv => kv.Key.StartsWith("vm-data/", StringComparison.Ordinal))
            .ToDictionary(kv => kv.Key, kv => kv.Value);
        var spec = new VmLaunchSpec(vm.Uuid, vm.Get(XenApi.VM.NameLabel), vm.Get(XenApi.VM.MemoryStaticMax), (int)Math.Max(1, vm.Get(XenApi.VM.VCPUsAtStartup)),
            IsParavirtual(vm), disks.OrderBy(d => d.Index).ToList(), nics.OrderBy(n => n.Index).ToList(), firmware, Uefi: VmNvram.SpecOf(vm),
            Tpm: await VmVtpm.SpecOfAsync(database, vm, cancellationToken));
        if (!attachedOnly)
        {
            return VmHardware.ForStart(spec, vm);
        }

        // VCPUs_at_startup is the vCPUs the guest has now (a live change updates it); the rest as the source started.
        var metrics = await database.TryGetAsync(XenClasses.VMMetrics, vm.Get(XenApi.VM.Metrics), cancellationToken);
        return VmHardware.AsRecorded(spec, metrics?.Get(XenApi.VMMetrics.OtherConfig).GetValueOrDefault(VmHardware.MetricsKey));
    }

    /// <summary>A VBD as a disk: its index (the userdevice's disk number) and its VDI's image as this host reaches it.</summary>
    public async Task<DiskSpec> DiskAsync(XenObject vm, XenObject vbd, int? pciSlot, CancellationToken cancellationToken,
        (string Path, string Format)? imageOverride = null)
    {
        var userdevice = vbd.Get(XenApi.VBD.Userdevice);
        var index = DeviceNumbers.DiskIndex(userdevice) ?? throw new XenApiException(ErrorCodes.InvalidDevice, userdevice);
        var isCd = vbd.Get(XenApi.VBD.Type) == VbdType.CD;
        string? path = null;
        var format = "raw";
        if (imageOverride is { Path: not null } overridden)
        {
            (path, format) = overridden;
        }
        else if (!vbd.Get(XenApi.VBD.Empty) && !OpaqueRef.IsNull(vbd.Get(XenApi.VBD.VDI)))
        {
            (path, format) = await ResolveVdiAsync(vm.Ref, vbd.Get(XenApi.VBD.VDI), cancellationToken);
        }

        var (bootable, bootIndex) = BootOrder.Of(vm, isCd, index, vbd.Get(XenApi.VBD.Bootable));
        return new DiskSpec(index, path, format, vbd.Get(XenApi.VBD.Mode) == VbdMode.RO || isCd, isCd, bootable, pciSlot, bootIndex);
    }

    /// <summary>A VIF as a network card, its tap (vif&lt;domid&gt;.&lt;device&gt;) made and on the network's bridge.</summary>
    public async Task<NicSpec> NicAsync(XenObject vif, long domid, CancellationToken cancellationToken)
    {
        var network = await database.GetAsync(XenClasses.Network, vif.Get(XenApi.VIF.Network), cancellationToken);
        var bridge = network.Get(XenApi.Network.Bridge);
        var device = vif.Get(XenApi.VIF.Device);
        if (!int.TryParse(device, NumberStyles.None, CultureInfo.InvariantCulture, out var index))
        {
            throw new XenApiException(ErrorCodes.InvalidDevice, device);
        }

        var tap = BridgeNetworking.TapName(domid, device);
        await networking.EnsureBridgeAsync(bridge, cancellationToken);
        await EnsureUplinkAsync(network, cancellationToken);
        await networking.EnsureTapAsync(tap, bridge, (int)network.Get(XenApi.Network.MTU), cancellationToken);
        return new NicSpec(index, tap, vif.Get(XenApi.VIF.MAC));
    }

    /// <summary>
    /// The network's card on this host (its PIF) a port of the network's bridge, so that the VMs reach the wire: a card
    /// that is a port of another bridge, or carries addresses of its own (a management card kept outside a bridge), is
    /// left alone and refused with PIF_CONFIGURATION_ERROR, since moving its addresses would cut the host off.
    /// </summary>
    private async Task EnsureUplinkAsync(XenObject network, CancellationToken cancellationToken)
    {
        var bridge = network.Get(XenApi.Network.Bridge);
        var pif = (await database.GetAllAsync(XenClasses.PIF, cancellationToken)).FirstOrDefault(p =>
            p.Get(XenApi.PIF.Network) == network.Ref && p.Get(XenApi.PIF.Host) == identity.Ref && p.Get(XenApi.PIF.Physical) && p.Get(XenApi.PIF.VLAN) == -1);
        if (pif is null)
        {
            return; // an internal network: the bridge alone
        }

        var card = pif.Get(XenApi.PIF.Device);
        var link = (await HostInterfaces.ReadLinksAsync(cancellationToken)).FirstOrDefault(l => l.Name == card);
        if (link is null || link.Master == bridge)
        {
            return;
        }

        if (link.Master is not null)
        {
            throw new XenApiException("PIF_CONFIGURATION_ERROR", pif.Ref, $"{card} is a port of {link.Master}, not of this network's bridge {bridge}");
        }

        if (link.Addresses.Any(a => !a.LinkLocal))
        {
            throw new XenApiException("PIF_CONFIGURATION_ERROR", pif.Ref,
                $"{card} carries this host's addresses ({string.Join(", ", link.Addresses.Where(a => !a.LinkLocal))}): configure them on bridge {bridge} with {card} as its port");
        }

        await networking.AddPortAsync(card, bridge, cancellationToken);
        logger.LogInformation("Network card {Device} is now a port of bridge {Bridge} (network {Network})", card, bridge, network.Get(XenApi.Network.NameLabel));
    }

    /// <summary>A VDI's image as this host opens it (the SR plugged here), or VM_REQUIRES_SR.</summary>
    public async Task<(string Path, string Format)> ResolveVdiAsync(string vmRef, string vdiRef, CancellationToken cancellationToken)
    {
        var vdi = await database.GetAsync(XenClasses.VDI, vdiRef, cancellationToken);
        var sr = await database.GetAsync(XenClasses.SR, vdi.Get(XenApi.VDI.SR), cancellationToken);
        var directory = await StorageOperationHandler.LocalDirectoryAsync(database, sr, identity.Ref, cancellationToken)
                        ?? throw new XenApiException(ErrorCodes.VmRequiresSr, vmRef, sr.Ref);
        return drivers.Get(sr.Get(XenApi.SR.Type)).Resolve(directory, vdi.Get(XenApi.VDI.Location));
    }

    /// <summary>
    /// The guest's names for the disks of a VM that starts: virtio disks vda, vdb... in index order, the IDE controller's
    /// hda, hdb... in the order QEMU fills its slots.
    /// </summary>
    public static IReadOnlyDictionary<int, string> NamesAtStart(VmLaunchSpec spec)
    {
        var names = new Dictionary<int, string>();
        int virtio = 0, ide = 0;
        foreach (var disk in spec.Disks.OrderBy(d => d.Index))
        {
            names[disk.Index] = !disk.IsCdrom && spec.Paravirtual ? "vd" + DeviceNumber.Letters(virtio++) : "hd" + DeviceNumber.Letters(ide++);
        }

        return names;
    }

    /// <summary>The name the guest gives a virtio disk plugged now: Linux takes the lowest letter no disk of the VM has.</summary>
    public async Task<string> NameForPluggedDiskAsync(XenObject vm, string vbdRef, CancellationToken cancellationToken)
    {
        var taken = new HashSet<string>(StringComparer.Ordinal);
        foreach (var other in vm.Get(XenApi.VM.VBDs).Where(r => r != vbdRef))
        {
            if (await database.TryGetAsync(XenClasses.VBD, other, cancellationToken) is { } vbd && vbd.Get(XenApi.VBD.CurrentlyAttached))
            {
                taken.Add(vbd.Get(XenApi.VBD.Device));
            }
        }

        return Enumerable.Range(0, int.MaxValue).Select(i => "vd" + DeviceNumber.Letters(i)).First(n => !taken.Contains(n));
    }

    /// <summary>
    /// Makes the VM's VBDs and VIFs say what its process has: attached (with the PCI slot) exactly when <paramref name="spec"/>
    /// has the device; null means none (the VM halted). <paramref name="names"/> gives disks' guest names to record.
    /// </summary>
    public async Task RecordAsync(XenObject vm, VmLaunchSpec? spec, CancellationToken cancellationToken, IReadOnlyDictionary<int, string>? names = null)
    {
        // One guarded write per device, retried on a lost race: another writer of a device (a hot-plug, an operation's
        // mark) must not fail the start. (allowed_operations is derived state under its own key: it races no one.)
        foreach (var vbdRef in vm.Get(XenApi.VM.VBDs))
        {
            // A device destroyed meanwhile has nothing left to record.
            if (await database.TryGetAsync(XenClasses.VBD, vbdRef, cancellationToken) is null)
            {
                continue;
            }

            await database.UpdateAsync([(XenClasses.VBD, vbdRef)], (objs, tx) =>
            {
                var vbd = objs[0];
                var index = DeviceNumbers.DiskIndex(vbd.Get(XenApi.VBD.Userdevice));
                var disk = spec?.Disks.FirstOrDefault(d => d.Index == index);
                if (Changed(vbd, disk is not null, disk?.PciSlot, index is { } i ? names?.GetValueOrDefault(i) : null) is { } updated)
                {
                    tx.Update(updated);
                }
            }, cancellationToken);
        }

        foreach (var vifRef in vm.Get(XenApi.VM.VIFs))
        {
            if (await database.TryGetAsync(XenClasses.VIF, vifRef, cancellationToken) is null)
            {
                continue;
            }

            await database.UpdateAsync([(XenClasses.VIF, vifRef)], (objs, tx) =>
            {
                var vif = objs[0];
                var nic = spec?.Nics.FirstOrDefault(n => n.Index.ToString(CultureInfo.InvariantCulture) == vif.Get(XenApi.VIF.Device));
                if (Changed(vif, nic is not null, nic?.PciSlot, null) is { } updated)
                {
                    tx.Update(updated);
                }
            }, cancellationToken);
        }
    }

    /// <summary>One device attached (with its slot, and for a disk the guest's name) or detached; recorded at once.</summary>
    public async Task RecordOneAsync(string className, string reference, bool attached, int? pciSlot, string? deviceName, CancellationToken cancellationToken) =>
        await database.UpdateAsync([(className, reference)], (objs, tx) =>
        {
            if (Changed(objs[0], attached, pciSlot, deviceName) is { } updated)
            {
                tx.Update(updated);
            }
        }, cancellationToken);

    /// <summary>A VBD or VIF changed to say attached (or not) at that slot, or null when it says so already.</summary>
    private static XenObject? Changed(XenObject device, bool attached, int? pciSlot, string? deviceName)
    {
        var properties = device.GetStringMap("runtime_properties");
        var slot = attached && pciSlot is { } s ? s.ToString(CultureInfo.InvariantCulture) : null;
        var slotChanged = properties.GetValueOrDefault(PciSlotKey) != slot;
        var nameChanged = deviceName is not null && device.GetString("device") != deviceName;
        if (device.GetBool("currently_attached") == attached && !slotChanged && !nameChanged)
        {
            return null;
        }

        var updated = device.Clone();
        updated["currently_attached"] = attached;
        if (slot is null)
        {
            properties.Remove(PciSlotKey);
        }
        else
        {
            properties[PciSlotKey] = slot;
        }

        updated["runtime_properties"] = properties.ToDictionary(kv => kv.Key, kv => (object?)kv.Value);
        if (nameChanged)
        {
            updated["device"] = deviceName;
        }

        return updated;
    }

    private static int? RecordedSlot(XenObject device) =>
        int.TryParse(device.GetStringMap("runtime_properties").GetValueOrDefault(PciSlotKey), NumberStyles.None, CultureInfo.InvariantCulture, out var slot)
            ? slot
            : null;
}
