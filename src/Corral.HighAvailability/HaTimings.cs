namespace Corral.HighAvailability;

/// <summary>The waits of HA's recovery; the agent fills them from its options, the simulation from its scenario.</summary>
public sealed record HaTimings
{
    /// <summary>A storage heartbeat that has not moved for this long counts as stopped.</summary>
    public TimeSpan HeartbeatStaleAfter { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>What the master adds, after it sees a host's lease gone, before it treats the host as fenced.</summary>
    public TimeSpan FenceMargin { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>How long a VM that could not be placed waits before it is tried again (and a fence agent that failed).</summary>
    public TimeSpan RetryUnplaced { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How often the master recomputes <c>ha_plan_exists_for</c>.</summary>
    public TimeSpan PlanRefresh { get; init; } = TimeSpan.FromSeconds(5);
}
