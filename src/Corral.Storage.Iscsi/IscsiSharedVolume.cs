namespace Corral.Storage.Iscsi;

/// <summary>
/// HA's statefile on an iSCSI SR: an extent of the LUN of its own, allocated in the pool database's extent map under
/// the key <c>ha-statefile</c> (not a VDI uuid: SR.scan leaves it out, SR.destroy does not count it, and the map goes
/// with the SR record), the same extent each time HA is enabled on the SR. Allocation is idempotent per key, so hosts
/// asking at once get the one extent. It is not zeroed: a slot holds a heartbeat only when it names its own host
/// (<c>HeartbeatSlots</c>).
/// </summary>
internal static class IscsiStatefileVolume
{
    public const string Key = "ha-statefile";

    public static async Task<(string Blockdev, string? Password)> EnsureAsync(IscsiExtents extents, IscsiLocation target, long size, CancellationToken cancellationToken)
    {
        var lun = await IscsiTarget.FindAsync(target, cancellationToken);
        var (offset, length) = await extents.AllocateAsync(target.SrUuid, Key, size, lun.Size, cancellationToken);
        var secret = target.ChapUser is null ? null : "statefile-secret";
        return (IscsiLunIo.ImageOptions(target, lun.Number, offset, length, secret), target.ChapPassword);
    }
}
