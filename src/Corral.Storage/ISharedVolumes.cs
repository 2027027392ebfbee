namespace Corral.Storage;

/// <summary>
/// A fixed volume an SR keeps for the pool itself, not a VDI: HA's statefile and the VMs' sanlock leases. One of each
/// per SR, made the first time it is needed and used again each time after.
/// </summary>
/// <param name="Name">Names it on the SR (<c>.corral-&lt;name&gt;.raw</c> on NFS, the extent key on iSCSI).</param>
/// <param name="Size">Its size in bytes.</param>
public sealed record SharedVolume(string Name, long Size)
{
    /// <summary>HA's statefile: 4 KiB heartbeat slots for up to 1024 hosts (docs/ha.md).</summary>
    public static readonly SharedVolume Statefile = new("ha-statefile", 4L << 20);

    /// <summary>The VMs' sanlock leases: the lockspace in its first MiB, then one MiB per VM (docs/storage.md).</summary>
    public static readonly SharedVolume VmLeases = new("vm-leases", 256L << 20);

    /// <summary>Every name a volume of the pool's own has, which an SR's scan and destroy leave out of its VDIs.</summary>
    public static readonly IReadOnlySet<string> Names = new HashSet<string>(StringComparer.Ordinal) { Statefile.Name, VmLeases.Name };
}

/// <summary>
/// An SR type that keeps the pool's own volumes (<see cref="SharedVolume"/>) as volumes on the SR: those a host reaches
/// only in userspace, NFS and iSCSI, which qemu-storage-daemon exports on each host as a file (docs/ha.md,
/// docs/storage.md). File SRs keep them as files in their directory instead.
/// </summary>
public interface ISharedVolumes
{
    /// <summary>
    /// The SR's <paramref name="volume"/>, made if it is missing (every host may ask at once: one volume results), as
    /// qemu-storage-daemon's <c>--blockdev</c> options (a raw node over QEMU's userspace driver, without a node name)
    /// and the CHAP password they name as the secret <c>&lt;node&gt;-secret</c>.
    /// </summary>
    Task<(string Blockdev, string? Password)> VolumeAsync(string location, string srUuid, SharedVolume volume, string node, CancellationToken cancellationToken);
}
