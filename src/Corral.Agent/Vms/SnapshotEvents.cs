using Microsoft.Extensions.Logging;

namespace Corral.Agent.Vms;

/// <summary>Event ids of snapshots' and reverts' decisions on the host that makes them.</summary>
public static class SnapshotEvents
{
    public static readonly EventId Taken = new(2201, nameof(Taken));
    public static readonly EventId ResumedDiscarding = new(2202, nameof(ResumedDiscarding));
    public static readonly EventId QuiesceFailed = new(2203, nameof(QuiesceFailed));
    public static readonly EventId Discarded = new(2204, nameof(Discarded));
    public static readonly EventId Reverted = new(2210, nameof(Reverted));
    public static readonly EventId RevertFailed = new(2211, nameof(RevertFailed));
    public static readonly EventId VolumeUnreachable = new(2212, nameof(VolumeUnreachable));
}
