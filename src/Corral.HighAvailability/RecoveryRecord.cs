using System.Text.Json;

namespace Corral.HighAvailability;

/// <summary>The states of HA's recovery of one failed host, in order.</summary>
public static class RecoveryStates
{
    /// <summary>The host's liveness lease is gone: the master waits out the fence deadline and the storage heartbeat.</summary>
    public const string Detected = "detected";

    /// <summary>The host is fenced and its VMs recorded halted (one transaction with this state); they are restarted in order.</summary>
    public const string Restarting = "restarting";
}

/// <summary>One VM HA is to restart, in the order it goes; VMs of one priority and <c>order</c> without a start delay go together.</summary>
public sealed record RestartItem(string VmRef, string Priority, long StartDelaySeconds, long Order = 0)
{
    public static RestartItem Of(HaVm vm) => new(vm.Ref, vm.RestartPriority, vm.StartDelaySeconds, vm.Order);

    /// <summary>The protected VMs in the order restarts go: <see cref="InRestartOrder"/>, ties by name.</summary>
    public static IReadOnlyList<RestartItem> Ordered(IEnumerable<HaVm> vms) =>
        InRestartOrder(vms.Where(v => v.IsProtected).OrderBy(v => v.Name, StringComparer.Ordinal).Select(Of));

    /// <summary>Priority <c>restart</c> before <c>best-effort</c>, then by <c>order</c>; a stable sort, so ties keep their order.</summary>
    public static IReadOnlyList<RestartItem> InRestartOrder(IEnumerable<RestartItem> items) =>
        items.OrderBy(i => i.Priority == RestartPriority.Restart ? 0 : 1).ThenBy(i => i.Order).ToList();
}

/// <summary>
/// HA's recovery of one failed host, persisted in the pool database (the agent keeps it at
/// <c>/corral/ha/recoveries/&lt;host ref&gt;</c>) so that a new master resumes it where the old one stopped. Times are
/// the recording master's clock, used only to wait, never to decide that a host is fenced on another host's say.
/// </summary>
public sealed record RecoveryRecord
{
    public required string HostRef { get; init; }

    public string State { get; init; } = RecoveryStates.Detected;

    /// <summary>When this master saw the host's lease gone.</summary>
    public DateTime WaitingSinceUtc { get; init; }

    /// <summary>The host's storage heartbeat counter when last read; null when it has none.</summary>
    public long? Heartbeat { get; init; }

    /// <summary>The host's storage heartbeat has moved since its lease was seen gone: it is isolated, not dead.</summary>
    public bool Isolated { get; init; }

    /// <summary>A fence agent has powered the host off: it is fenced, whatever its lease and heartbeat say.</summary>
    public bool PowerFenced { get; init; }

    /// <summary>Protected VMs first, then best-effort ones, each group by <c>order</c>.</summary>
    public IReadOnlyList<RestartItem> Restarts { get; init; } = [];

    /// <summary>VMs restarted (or found running again), so not started twice.</summary>
    public IReadOnlyList<string> Done { get; init; } = [];

    /// <summary>VMs that could not be placed and were reported in a pool message (once each); they are retried.</summary>
    public IReadOnlyList<string> Reported { get; init; } = [];

    public DateTime LastStartUtc { get; init; }

    /// <summary>
    /// The record after a live host reports protected VMs of its own stopped without anyone asking (killed by its
    /// self-fence, or crashed): they are to be restarted. Whatever the master was doing about the host (waiting to
    /// declare it fenced, or restarting earlier VMs), the host's word that these processes are gone is final, so the
    /// record becomes <c>restarting</c> with these VMs added (again, if HA restarted them once before).
    /// </summary>
    public static RecoveryRecord WithRestartsRequested(RecoveryRecord? existing, string hostRef, IReadOnlyList<HaVm> stopped)
    {
        var names = stopped.Select(v => v.Ref).ToHashSet(StringComparer.Ordinal);
        var kept = existing is { State: RecoveryStates.Restarting } ? existing.Restarts.Where(i => !names.Contains(i.VmRef)).ToList() : [];
        var merged = RestartItem.InRestartOrder(kept.Concat(RestartItem.Ordered(stopped)));
        return (existing ?? new RecoveryRecord { HostRef = hostRef }) with
        {
            State = RecoveryStates.Restarting,
            Restarts = merged,
            Done = existing?.Done.Where(d => !names.Contains(d)).ToList() ?? [],
            Reported = existing?.Reported.Where(d => !names.Contains(d)).ToList() ?? [],
            PowerFenced = existing?.PowerFenced ?? false,
        };
    }

    /// <summary>
    /// The record to write once a survivor's fence agent has powered the host off (<see cref="MasterFence"/>): a new
    /// waiting record marked power-fenced, or the waiting one marked; null when the record is past waiting or marked
    /// already (a master has the recovery in hand).
    /// </summary>
    public static RecoveryRecord? PowerFencedBySurvivor(RecoveryRecord? existing, string hostRef, DateTime nowUtc, long? heartbeat) =>
        existing is null or { State: RecoveryStates.Detected, PowerFenced: false }
            ? (existing ?? new RecoveryRecord { HostRef = hostRef, WaitingSinceUtc = nowUtc, Heartbeat = heartbeat }) with { PowerFenced = true }
            : null;

    public string ToJson() => JsonSerializer.Serialize(this, Options);

    public static RecoveryRecord FromJson(string json) => JsonSerializer.Deserialize<RecoveryRecord>(json, Options) ?? throw new JsonException("empty recovery");

    private static readonly JsonSerializerOptions Options = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
}
