namespace Corral.HighAvailability;

/// <summary>
/// The wait between a self-fence falling due (<see cref="SelfFencePolicy.MustFence"/>) and its being carried out:
/// <see cref="HaTimings.ReportGrace"/>, for the agent's word on a lease that a stall left out of date. A host thawing
/// from a stall finds its lease's safe time passed and its own heartbeat not landing, both because it did nothing
/// meanwhile. Only the same lease, made safe again by an acknowledged keepalive, calls the fence off: etcd never
/// revives an expired lease, so nobody can have declared the host dead. A new lease proves nothing about the old one,
/// whose expiry may have let the master restart the VMs elsewhere: the fence is carried out all the same. Held by the
/// fence daemon, the agent's own self-fence and the simulation alike, each on its own monotonic clock.
/// </summary>
public sealed class FenceGrace
{
    private TimeSpan? _dueSince;
    private long? _dueLease;
    private bool _carried;

    /// <summary>
    /// Whether the fence must be carried out now: it is <paramref name="due"/>, or fell due under another lease than
    /// <paramref name="leaseId"/> (null: unknown, which never calls a fence off) and has not been carried out yet, and
    /// it fell due at least the grace ago.
    /// </summary>
    public bool Carry(bool due, long? leaseId, TimeSpan now, HaTimings timings)
    {
        if (_dueSince is not { } since)
        {
            if (!due)
            {
                return false;
            }

            since = (_dueSince = now).Value;
            _dueLease = leaseId;
            _carried = false;
        }
        else if (!due && (_carried || (leaseId is { } id && id == _dueLease)))
        {
            _dueSince = null;
            return false;
        }

        _carried |= now - since >= timings.ReportGrace;
        return _carried;
    }
}
