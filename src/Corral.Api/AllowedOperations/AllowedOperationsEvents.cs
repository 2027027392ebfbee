using Microsoft.Extensions.Logging;

namespace Corral.Api.AllowedOperations;

/// <summary>Event ids of the decisions about allowed and current operations.</summary>
public static class AllowedOperationsEvents
{
    public static readonly EventId Following = new(4100, "AllowedOperationsFollowing");
    public static readonly EventId Stopped = new(4101, "AllowedOperationsStopped");
    public static readonly EventId Changed = new(4102, "AllowedOperationsChanged");
    public static readonly EventId Vanished = new(4103, "AllowedOperationsObjectVanished");
    public static readonly EventId StaleEntry = new(4104, "CurrentOperationStale");
    public static readonly EventId Failed = new(4105, "AllowedOperationsFailed");
    public static readonly EventId Marked = new(4110, "CurrentOperationMarked");
    public static readonly EventId Released = new(4111, "CurrentOperationReleased");
    public static readonly EventId ReleaseFailed = new(4112, "CurrentOperationReleaseFailed");
}
