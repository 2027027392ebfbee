namespace Corral.Hypervisor;

/// <summary>Everything a hypervisor needs to start one VM; built by the agent from the pool database.</summary>
/// <param name="VmUuid">The VM's uuid; names the runtime directory and lets a restarted agent find the process again.</param>
/// <param name="Name">Shown in the process list and QEMU's <c>-name</c>.</param>
/// <param name="Paravirtual">True: virtio disk, NIC and the guest-agent channel. False: emulated IDE disk and e1000 NIC only.</param>
/// <param name="FirmwareConfig">Key/value pairs the guest reads through QEMU's fw_cfg (<c>opt/corral/&lt;key&gt;</c>): Corral's vm-data.</param>
/// <param name="IncomingMigration">When set, QEMU starts paused waiting for a migration stream at this URI.</param>
/// <param name="Uefi">UEFI firmware and its variable store; null: the BIOS.</param>
/// <param name="Tpm">The VM's virtual TPM 2.0 and its saved state; null: the VM has none.</param>
/// <param name="Lease">
/// The VM's lease on shared storage, held by the VM's process for as long as it runs (see <see cref="IVmLeaseLauncher"/>);
/// null: the VM has none (no disk on a shared SR, or leases are off on this host).
/// </param>
/// <param name="IncomingPeerIdentity">
/// With <paramref name="IncomingMigration"/>: the TLS identity (the certificate's distinguished name, RFC 4514) of the
/// only host whose migration stream and NBD client the VM accepts, the migration's source. Used when this host has its
/// pool's TLS material; the hypervisor clears it when it does not (the streams are then plain TCP).
/// </param>
/// <param name="MaxVcpus">
/// The most vCPUs the VM may have while it runs (XenServer's <c>VCPUs_max</c>): room for CPUs plugged into the running
/// guest. <paramref name="Vcpus"/> is how many it has now, which a live migration's destination starts with. Null: no room.
/// </param>
/// <param name="Balloon">
/// The VM has a memory balloon (a virtio-balloon device), through which its memory is set while it runs. False for a VM
/// started before Corral gave every VM one (read back from its vm.json), whose destination must not get one either.
/// </param>
/// <param name="DiskQueues">
/// The request queues of each virtio disk. QEMU gives a disk one per vCPU the process starts with; once vCPUs have been
/// plugged in or out, the count the process started with is kept here, so that a migration's destination (started with
/// the vCPUs the guest has then) builds its disks alike. Null: <paramref name="Vcpus"/>.
/// </param>
public sealed record VmLaunchSpec(
    string VmUuid,
    string Name,
    long MemoryBytes,
    int Vcpus,
    bool Paravirtual,
    IReadOnlyList<DiskSpec> Disks,
    IReadOnlyList<NicSpec> Nics,
    IReadOnlyDictionary<string, string> FirmwareConfig,
    string? IncomingMigration = null,
    VmLease? Lease = null,
    UefiSpec? Uefi = null,
    TpmSpec? Tpm = null,
    int? MaxVcpus = null,
    bool Balloon = false,
    int? DiskQueues = null,
    string? IncomingPeerIdentity = null);

/// <summary>
/// A VM that boots UEFI firmware (OVMF) rather than the BIOS, with its UEFI variables: the variable store the VM last
/// left (XenServer keeps it in <c>VM.NVRAM</c>), or null for a first boot from the firmware's empty store. The store
/// is not written to the runtime directory's vm.json.
/// </summary>
/// <param name="SecureBoot">
/// A first boot starts from the store with the Secure Boot keys enrolled and Secure Boot on (Microsoft's, which sign
/// shim and Windows' loader), not the empty one. A store the VM already has is its own and kept as it is.
/// </param>
public sealed record UefiSpec([property: System.Text.Json.Serialization.JsonIgnore] byte[]? Variables, bool SecureBoot = false);

/// <summary>
/// A virtual TPM 2.0 (XenServer's VTPM): its persistent state as the VM last left it (the VTPM's contents), or null for
/// a new TPM. Not written to the runtime directory's vm.json.
/// </summary>
public sealed record TpmSpec([property: System.Text.Json.Serialization.JsonIgnore] byte[]? State);

/// <summary>One block device. <paramref name="Path"/> is null for an empty CD drive.</summary>
/// <param name="Index">The VBD's userdevice: 0 is the first disk; the boot order follows it.</param>
/// <param name="PciSlot">
/// Where the device sits on the guest's PCI bus (a disk on the IDE controller has none). Null: the hypervisor chooses.
/// A migration's destination must put every device where the source has it, so a VM that moves keeps its slots.
/// </param>
/// <param name="BootIndex">The device's place in the firmware's boot order when <paramref name="Bootable"/>; null: its index.</param>
public sealed record DiskSpec(int Index, string? Path, string Format, bool ReadOnly, bool IsCdrom, bool Bootable, int? PciSlot = null, int? BootIndex = null);

/// <summary>One network card, attached to a tap the networking layer has already made.</summary>
/// <param name="PciSlot">Where the card sits on the guest's PCI bus; null: the hypervisor chooses.</param>
public sealed record NicSpec(int Index, string TapName, string Mac, int? PciSlot = null);
