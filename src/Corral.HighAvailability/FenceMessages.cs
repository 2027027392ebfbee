using System.Text.Json.Serialization;

namespace Corral.HighAvailability;

/// <summary>
/// What the agent sends its host's fence daemon over the daemon's Unix socket, one JSON line at a time. Times are on
/// the host's monotonic clock (CLOCK_MONOTONIC, which the agent and the daemon share): the lease's safe time is
/// converted by the agent at the instant it reads it, so no wall clock crosses the socket.
/// </summary>
public sealed record FenceReportMessage(
    [property: JsonPropertyName("ha_enabled")] bool HaEnabled,
    [property: JsonPropertyName("host_uuid")] string HostUuid,
    [property: JsonPropertyName("statefile_directory")] string? StatefileDirectory,
    [property: JsonPropertyName("lease_safe_until_ns")] long LeaseSafeUntilNanoseconds,
    [property: JsonPropertyName("timings")] FenceTimingsMessage Timings,
    [property: JsonPropertyName("lease_id")] long? LeaseId = null,
    [property: JsonPropertyName("statefile_volume")] StatefileVolume? StatefileVolume = null);

/// <summary>
/// HA's statefile on an SR the host reaches only in userspace (NFS through libnfs, iSCSI through libiscsi): a volume of
/// one 4 KiB slot per host (<c>Slots</c>, the hosts' uuids in slot order), which qemu-storage-daemon exports on this
/// host as the file <c>Path</c> (FUSE), opened by the fence daemon and the agent as a file SR's heartbeats are.
/// </summary>
/// <param name="Blockdev">qemu-storage-daemon's <c>--blockdev</c> options for the volume (a raw node over QEMU's nfs or
/// iscsi driver, without its node name); a CHAP password is named <c>statefile-secret</c>.</param>
/// <param name="Password">The CHAP password the options name, written to a root-only file beside the export, never on
/// a command line.</param>
public sealed record StatefileVolume(
    [property: JsonPropertyName("path")] string Path,
    [property: JsonPropertyName("slots")] IReadOnlyList<string> Slots,
    [property: JsonPropertyName("blockdev")] string Blockdev,
    [property: JsonPropertyName("password")] string? Password = null)
{
    public bool Equals(StatefileVolume? other) =>
        other is not null && Path == other.Path && Blockdev == other.Blockdev && Password == other.Password && Slots.SequenceEqual(other.Slots);

    public override int GetHashCode() => HashCode.Combine(Path, Blockdev, Slots.Count);
}

/// <summary>The timing budget, in milliseconds.</summary>
public sealed record FenceTimingsMessage(
    [property: JsonPropertyName("heartbeat_interval_ms")] long HeartbeatInterval,
    [property: JsonPropertyName("heartbeat_stale_after_ms")] long HeartbeatStaleAfter,
    [property: JsonPropertyName("own_heartbeat_window_ms")] long OwnHeartbeatWindow,
    [property: JsonPropertyName("self_fence_check_ms")] long SelfFenceCheck,
    [property: JsonPropertyName("kill_grace_ms")] long KillGrace,
    [property: JsonPropertyName("watchdog_timeout_ms")] long WatchdogTimeout,
    [property: JsonPropertyName("fence_margin_ms")] long FenceMargin,
    [property: JsonPropertyName("isolation_power_off_after_ms")] long? IsolationPowerOffAfter,
    [property: JsonPropertyName("report_grace_ms")] long? ReportGrace = null)
{
    public static FenceTimingsMessage From(HaTimings t) => new(
        Ms(t.HeartbeatInterval), Ms(t.HeartbeatStaleAfter), Ms(t.OwnHeartbeatWindow), Ms(t.SelfFenceCheck), Ms(t.KillGrace),
        Ms(t.WatchdogTimeout), Ms(t.FenceMargin), t.IsolationPowerOffAfter is { } after ? Ms(after) : null, Ms(t.ReportGrace));

    /// <summary>The budget as the daemon uses it; what an older agent does not send (the report grace) keeps its default.</summary>

    public HaTimings ToTimings() => new()
    {
        HeartbeatInterval = TimeSpan.FromMilliseconds(HeartbeatInterval),
        HeartbeatStaleAfter = TimeSpan.FromMilliseconds(HeartbeatStaleAfter),
        OwnHeartbeatWindow = TimeSpan.FromMilliseconds(OwnHeartbeatWindow),
        SelfFenceCheck = TimeSpan.FromMilliseconds(SelfFenceCheck),
        KillGrace = TimeSpan.FromMilliseconds(KillGrace),
        WatchdogTimeout = TimeSpan.FromMilliseconds(WatchdogTimeout),
        FenceMargin = TimeSpan.FromMilliseconds(FenceMargin),
        IsolationPowerOffAfter = IsolationPowerOffAfter is { } after ? TimeSpan.FromMilliseconds(after) : null,
        ReportGrace = ReportGrace is { } grace ? TimeSpan.FromMilliseconds(grace) : Defaults.ReportGrace,
    };

    private static readonly HaTimings Defaults = new();

    private static long Ms(TimeSpan t) => (long)t.TotalMilliseconds;
}

/// <summary>The daemon's answer to each report.</summary>
/// <param name="SinceBeatBeganNanoseconds">How long ago its last heartbeat write that landed began (null: none yet).</param>
/// <param name="Fenced">Whether it has killed the VMs and stopped beating since the lease was last safe.</param>
/// <param name="Armed">Whether the watchdog is armed.</param>
public sealed record FenceStatusMessage(
    [property: JsonPropertyName("since_beat_began_ns")] long? SinceBeatBeganNanoseconds,
    [property: JsonPropertyName("fenced")] bool Fenced,
    [property: JsonPropertyName("armed")] bool Armed);

/// <summary>The host's monotonic clock as a <see cref="TimeSpan"/> (CLOCK_MONOTONIC: the same in every process of the host).</summary>
public static class MonotonicClock
{
    public static TimeSpan Now(TimeProvider clock) => FromTimestamp(clock.GetTimestamp(), clock.TimestampFrequency);

    public static TimeSpan FromTimestamp(long timestamp, long frequency) =>
        TimeSpan.FromTicks((long)((Int128)timestamp * TimeSpan.TicksPerSecond / frequency));
}
