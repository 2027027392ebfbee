namespace Corral.HighAvailability;

/// <summary>A host as HA's recovery sees it.</summary>
public sealed record HaHost(string Ref, string Uuid, string Name, bool Live, bool Enabled, bool HasFenceAgent);

/// <summary>A VM as HA's recovery sees it; <see cref="Memory"/> is what it needs on a host (static max plus overhead).</summary>
public sealed record HaVm(string Ref, string Name, string PowerState, string ResidentOn, string RestartPriority, long Order, long StartDelaySeconds, long Memory)
{
    public bool IsActive => PowerState is "Running" or "Paused";

    public bool IsProtected => RestartPriority is HighAvailability.RestartPriority.Restart or HighAvailability.RestartPriority.BestEffort;
}

/// <summary>A restart the pool refused, with its XenAPI error (code first).</summary>
public sealed class VmRestartException(IReadOnlyList<string> errorDescription)
    : Exception(string.Join(", ", errorDescription))
{
    public IReadOnlyList<string> ErrorDescription { get; } = errorDescription;
}

/// <summary>
/// Everything <see cref="RecoveryEngine"/> reads and does, so that the one engine runs in the agent (over etcd, the
/// heartbeat SR, fence agents and <c>VM.start</c>) and in the HA simulation (over its in-memory store and simulated
/// hosts). Every write goes through the pool database, so a master that lost it cannot act on a stale view.
/// </summary>
public interface IRecoveryWorld
{
    /// <summary>Whether HA is on; null when there is no pool yet.</summary>
    Task<bool?> HaEnabledAsync(CancellationToken cancellationToken);

    /// <summary>The recoveries in progress, by host reference.</summary>
    Task<IReadOnlyDictionary<string, RecoveryRecord>> RecoveriesAsync(CancellationToken cancellationToken);

    Task<IReadOnlyList<HaHost>> HostsAsync(CancellationToken cancellationToken);

    Task<IReadOnlyList<HaVm>> VmsAsync(CancellationToken cancellationToken);

    /// <summary>The host's storage heartbeat counter as it reads now; null when it has none (or HA has no statefile here).</summary>
    long? Heartbeat(HaHost host);

    /// <summary>
    /// How long this host has watched the heartbeat stand still, up to its last successful read of the statefile (a
    /// master cut from the storage gathers no evidence); null when it has not read the statefile yet.
    /// </summary>
    TimeSpan? HeartbeatStillFor(HaHost host);

    /// <summary>
    /// False while a live migration the failed host was sending is unsettled and its destination is live: only the
    /// destination knows whether its copy of the VM runs, so the host cannot be declared fenced until it has committed
    /// or discarded that copy.
    /// </summary>
    Task<bool> MigrationsSettledAsync(HaHost host, CancellationToken cancellationToken);

    Task SaveAsync(RecoveryRecord record, CancellationToken cancellationToken);

    Task DeleteAsync(RecoveryRecord record, CancellationToken cancellationToken);

    /// <summary>
    /// In one transaction, guarded by the recovery record still being as read: the VMs recorded halted (off their
    /// host), the host's outgoing migrations ended as its agent would have ended them, and the record replaced by
    /// <paramref name="next"/>.
    /// </summary>
    Task DeclareFencedAsync(RecoveryRecord next, IReadOnlyList<HaVm> halted, CancellationToken cancellationToken);

    /// <summary>Powers the host off with its fence agent; true once it is known off.</summary>
    Task<bool> PowerFenceAsync(HaHost host, CancellationToken cancellationToken);

    /// <summary>Memory free for VMs on each host.</summary>
    Task<IReadOnlyDictionary<string, long>> FreeMemoryAsync(CancellationToken cancellationToken);

    /// <summary>Whether the host has every SR holding the VM's disks plugged.</summary>
    Task<bool> ReachesStorageAsync(HaVm vm, HaHost host, CancellationToken cancellationToken);

    /// <summary>
    /// Whether a start of the VM on the host would begin at once: false while the host has yet to join the lockspace of
    /// the VM's lease on shared storage (a host just back from a reboot takes 2-3 × sanlock's I/O timeout to), which
    /// the start would wait for. Placement prefers hosts where it is true.
    /// </summary>
    Task<bool> ReadyToStartAsync(HaVm vm, HaHost host, CancellationToken cancellationToken);

    /// <summary><c>VM.start</c> for HA (no admission control), on <paramref name="hostRef"/> or wherever placement says.</summary>
    /// <returns>The host it started on.</returns>
    /// <exception cref="VmRestartException">The pool refused, with its XenAPI error.</exception>
    Task<string> StartAsync(HaVm vm, string? hostRef, CancellationToken cancellationToken);

    /// <summary>A pool message, as XenServer's HA raises HA_PROTECTED_VM_RESTART_FAILED.</summary>
    Task ReportRestartFailedAsync(HaVm vm, IReadOnlyList<string> error, CancellationToken cancellationToken);

    /// <summary>Recomputes <c>pool.ha_plan_exists_for</c> and <c>ha_overcommitted</c>.</summary>
    Task RefreshPlanAsync(CancellationToken cancellationToken);
}
