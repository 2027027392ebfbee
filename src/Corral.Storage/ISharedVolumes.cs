namespace Corral.Storage;

/// <summary>
/// An SR type that holds HA's statefile as a volume (those a host reaches only in userspace, NFS and iSCSI): one fixed
/// volume per SR, made the first time HA is enabled on it and used again each time after, which qemu-storage-daemon
/// exports on each host as a file (docs/ha.md). File SRs keep their statefile as a directory instead.
/// </summary>
public interface IStatefileVolumes
{
    /// <summary>
    /// The SR's statefile volume of <paramref name="size"/> bytes, made if it is missing (every host may ask at once:
    /// one volume results), as qemu-storage-daemon's <c>--blockdev</c> options (a raw node over QEMU's userspace driver,
    /// without a node name) and the CHAP password they name as the secret <c>statefile-secret</c>.
    /// </summary>
    Task<(string Blockdev, string? Password)> StatefileVolumeAsync(string location, string srUuid, long size, CancellationToken cancellationToken);
}
