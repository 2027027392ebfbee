using Corral.Hypervisor;

namespace Corral.Agent.Vms;

/// <summary>What the source of a live migration does with its own copy once the migration is decided.</summary>
public enum ConclusionStep
{
    /// <summary>No copy here (it died, or an earlier run of this half already dealt with it).</summary>
    Nothing,

    /// <summary>The VM moved: this copy, paused by QEMU at the end of the migration, must never run again.</summary>
    KillStaleCopy,

    /// <summary>
    /// The VM stays, and QEMU still sends it (streaming, or holding the guest stopped at pre-switchover): cancel, so
    /// that the guest runs here again. Nobody else would: the destination discarded its copy or let it go.
    /// </summary>
    CancelMigration,

    /// <summary>
    /// The VM stays, and QEMU's migration is over or never began: the guest runs here as it did. (A QEMU that completed
    /// for a VM that stays, the destination having discarded a copy that had all of it but had not run it yet, holds
    /// its guest stopped for good; a <c>cont</c> here could race that discard, so it is left to the operator.)
    /// </summary>
    Keep,
}

/// <summary>
/// The source's conclusion as a pure decision, shared by <see cref="MigrationHandler"/> and the HA simulation. The
/// migration is aborted by whichever half found it could not go on, and the destination's half aborts without the
/// source: when the source's host stops being live (its agent restarting, its network cut) the destination discards
/// its incoming copy and records the abort. A source QEMU that had reached pre-switchover by then holds the guest
/// stopped for a go-ahead that never comes (QEMU notices the closed connection only once it sends again), so the
/// source's half, resumed and finding the migration aborted, cancels it rather than leave a stopped guest that the
/// pool database calls running.
/// </summary>
public static class ConclusionSteps
{
    /// <param name="moved">Whether the pool database places the VM on another host now.</param>
    /// <param name="hasCopy">Whether this host still has a QEMU process for the VM.</param>
    /// <param name="status">What that QEMU's <c>query-migrate</c> says (ignored without a copy).</param>
    public static ConclusionStep Next(bool moved, bool hasCopy, MigrationStatus status) =>
        !hasCopy ? ConclusionStep.Nothing
        : moved ? ConclusionStep.KillStaleCopy
        : status is MigrationStatus.Setup or MigrationStatus.Active or MigrationStatus.PreSwitchover or MigrationStatus.Other
            ? ConclusionStep.CancelMigration
            : ConclusionStep.Keep;
}
