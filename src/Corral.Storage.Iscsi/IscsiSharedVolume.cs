namespace Corral.Storage.Iscsi;

/// <summary>
/// A volume the pool keeps on an iSCSI SR (HA's statefile, the VMs' leases): an extent of the LUN of its own, allocated
/// in the pool database's extent map under the volume's name (not a VDI uuid: SR.scan leaves it out, SR.destroy does
/// not count it, and the map goes with the SR record), the same extent each time it is asked for. Allocation is
/// idempotent per key, so hosts asking at once get the one extent. It is not zeroed: a statefile slot holds a heartbeat
/// only when it names its own host (<c>HeartbeatSlots</c>), and sanlock's areas are written before they are used.
/// </summary>
internal static class IscsiSharedVolume
{
    public static async Task<(string Blockdev, string? Password)> EnsureAsync(IscsiExtents extents, IscsiLocation target, SharedVolume volume, string node,
        CancellationToken cancellationToken)
    {
        var lun = await IscsiTarget.FindAsync(target, cancellationToken);
        var (offset, length) = await extents.AllocateAsync(target.SrUuid, volume.Name, volume.Size, lun.Size, cancellationToken);
        var secret = target.ChapUser is null ? null : $"{node}-secret";
        return (IscsiLunIo.ImageOptions(target, lun.Number, offset, length, secret), target.ChapPassword);
    }
}
