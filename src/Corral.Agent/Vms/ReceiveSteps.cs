using Corral.Api.Migration;

namespace Corral.Agent.Vms;

/// <summary>What the destination of a live migration does next, on one reading of the migration record.</summary>
public enum ReceiveStep
{
    /// <summary>The record says preparing: start the incoming copy and record the migration ready.</summary>
    Prepare,

    /// <summary>Completed: the copy here becomes the VM's process if the pool places the VM here (once).</summary>
    Finish,

    /// <summary>Completed, received, and the source host is gone: end the migration as the source would have.</summary>
    EndForGoneSource,

    /// <summary>Completed and received: the source ends the migration (kills its copy, removes the record).</summary>
    WaitForSource,

    /// <summary>Aborting: the incoming copy (and any disk copies made for it) goes; this half is done.</summary>
    Discard,

    /// <summary>The incoming copy is gone (this agent restarted and stopped it, or QEMU died): the VM stays where it is.</summary>
    AbortCopyGone,

    /// <summary>The whole VM arrived and runs here: the migration is complete, whatever the source knows (or if it is gone).</summary>
    Commit,

    /// <summary>
    /// The source host is gone before the VM ran here: a host whose plug was pulled never closes the stream, so the copy
    /// goes first, then the record says aborted (HA restarts the VM only once it reads that).
    /// </summary>
    DiscardSourceGone,

    /// <summary>Switching: this copy waits, holding the VM's lease shared: acknowledge, so the source lets the VM switch over.</summary>
    Acknowledge,

    /// <summary>Nothing to do yet.</summary>
    Wait,
}

/// <summary>
/// The destination's half of a live migration as a pure decision, shared by <see cref="MigrationHandler"/> and the HA
/// simulation, as <see cref="SwitchoverSteps"/> is for the source: the simulation drives this, not a copy of it.
/// </summary>
public static class ReceiveSteps
{
    /// <param name="state">The record's state.</param>
    /// <param name="received">Whether this run of the half has finished receiving (<see cref="ReceiveStep.Finish"/> done).</param>
    /// <param name="copyAlive">Whether the incoming copy's QEMU is alive.</param>
    /// <param name="sourceGone">Whether the source host was found no longer live (looked at when <see cref="AsksAboutSource"/>).</param>
    /// <param name="copyRunsGuest">Whether the incoming copy runs the guest (looked at when <see cref="AsksWhetherRunning"/>).</param>
    public static ReceiveStep Next(string state, bool received, bool copyAlive, bool sourceGone, bool copyRunsGuest) => state switch
    {
        MigrationStates.Preparing => ReceiveStep.Prepare,
        MigrationStates.Completed when !received => ReceiveStep.Finish,
        MigrationStates.Completed => sourceGone ? ReceiveStep.EndForGoneSource : ReceiveStep.WaitForSource,
        MigrationStates.Aborting => ReceiveStep.Discard,
        _ when !copyAlive => ReceiveStep.AbortCopyGone,
        MigrationStates.SwitchAcknowledged when copyRunsGuest => ReceiveStep.Commit,
        _ when sourceGone => ReceiveStep.DiscardSourceGone,
        MigrationStates.Switching => ReceiveStep.Acknowledge,
        _ => ReceiveStep.Wait,
    };

    /// <summary>Whether <see cref="Next"/> needs to know if the source host is gone: a look at the pool database.</summary>
    public static bool AsksAboutSource(string state, bool received, bool copyAlive) => state switch
    {
        MigrationStates.Preparing or MigrationStates.Aborting => false,
        MigrationStates.Completed => received,
        _ => copyAlive,
    };

    /// <summary>Whether <see cref="Next"/> needs to know if the copy runs the guest: a question to its QEMU.</summary>
    public static bool AsksWhetherRunning(string state, bool copyAlive) => state == MigrationStates.SwitchAcknowledged && copyAlive;

    /// <summary>Whether the switchover is near (the source stops the guest for it): the half then looks often.</summary>
    public static bool NearSwitchover(string state) => state is not (MigrationStates.Ready or MigrationStates.Mirroring);
}
