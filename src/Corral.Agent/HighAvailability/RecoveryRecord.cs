using System.Text.Json;
using System.Text.Json.Serialization;
using Corral.PoolDatabase;

namespace Corral.Agent.HighAvailability;

/// <summary>The states of HA's recovery of one failed host, in order.</summary>
public static class RecoveryStates
{
    /// <summary>The host's liveness lease is gone: the master waits out the fence deadline and the storage heartbeat.</summary>
    public const string Detected = "detected";

    /// <summary>The host is fenced and its VMs recorded halted (one transaction with this state); they are restarted in order.</summary>
    public const string Restarting = "restarting";
}

/// <summary>One VM HA is to restart, in the order it goes; VMs of one priority and <c>order</c> without a start delay go together.</summary>
public sealed record RestartItem(string VmRef, string Priority, long StartDelaySeconds, long Order = 0);

/// <summary>
/// HA's recovery of one failed host, persisted at <c>/corral/ha/recoveries/&lt;host ref&gt;</c> so that a new master
/// resumes it where the old one stopped. Times are the recording master's clock, used only to wait, never to decide
/// that a host is fenced on another host's say.
/// </summary>
public sealed record RecoveryRecord
{
    public const string Prefix = PoolKeys.Root + "ha/recoveries/";

    public required string HostRef { get; init; }

    public string State { get; init; } = RecoveryStates.Detected;

    /// <summary>When this master saw the host's lease gone (or last saw its storage heartbeat move).</summary>
    public DateTime WaitingSinceUtc { get; init; }

    /// <summary>The host's storage heartbeat counter when last read; null when it has none.</summary>
    public long? Heartbeat { get; init; }

    /// <summary>A fence agent has powered the host off: it is fenced, whatever its lease and heartbeat say.</summary>
    public bool PowerFenced { get; init; }

    /// <summary>Protected VMs first, then best-effort ones, each group by <c>order</c>.</summary>
    public IReadOnlyList<RestartItem> Restarts { get; init; } = [];

    /// <summary>VMs restarted (or found running again), so not started twice.</summary>
    public IReadOnlyList<string> Done { get; init; } = [];

    /// <summary>VMs that could not be placed and were reported in a pool message (once each); they are retried.</summary>
    public IReadOnlyList<string> Reported { get; init; } = [];

    public DateTime LastStartUtc { get; init; }

    [JsonIgnore]
    public string Key => Prefix + HostRef;

    public string ToJson() => JsonSerializer.Serialize(this, Options);

    public static RecoveryRecord FromJson(string json) => JsonSerializer.Deserialize<RecoveryRecord>(json, Options) ?? throw new JsonException("empty recovery");

    private static readonly JsonSerializerOptions Options = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
}
