using Corral.Api.Migration;
using Corral.Hypervisor;

namespace Corral.Agent.Vms;

/// <summary>What the source of a live migration does next, once QEMU sends the VM.</summary>
public enum SourceStep
{
    /// <summary>Still sending, switchover not released: report progress, and check the destination and the disk copies (either may cancel).</summary>
    Stream,

    /// <summary>QEMU completed: the decision (the commit), if the destination has not made it first.</summary>
    Commit,

    /// <summary>QEMU ended the migration (failed or cancelled; it resumes the guest here itself): the record says aborting.</summary>
    Abort,

    /// <summary>QEMU has no migration: the agent restarted between recording <c>migrating</c> and telling QEMU. Nothing was sent.</summary>
    AbortNotStarted,

    /// <summary>QEMU holds at pre-switchover (guest stopped): complete the disk copies, then ask the destination (<c>switching</c>).</summary>
    AskAcknowledgement,

    /// <summary>Waiting, guest stopped, for the destination's acknowledgement.</summary>
    WaitForAcknowledgement,

    /// <summary>No acknowledgement in time: cancel (the guest resumes here; nothing of its last state was sent) and abort.</summary>
    CancelUnacknowledged,

    /// <summary>
    /// Acknowledged: record the release (<see cref="MigrationRecord.SwitchoverReleasedUtc"/>), and only if that guarded
    /// write succeeds send <c>migrate-continue</c>. The one place it is sent, so at most once per migration.
    /// </summary>
    Release,

    /// <summary>
    /// Released: QEMU sends the last device state. Wait for its verdict; nothing sends <c>migrate-continue</c> again,
    /// and the only reason left to cancel is a destination host that is no longer live: dead to the pool (HA restarts
    /// its VMs, its self-fence kills its QEMUs, incoming copies included), whose stalled stream would otherwise hold the
    /// guest stopped until TCP gives up, many minutes later. Disk copies were completed before the release.
    /// </summary>
    WaitForSwitchover,

    /// <summary>
    /// Released long ago and QEMU still holds at pre-switchover: the go-ahead never reached it (the agent stopped
    /// between recording and sending it). Cancelling there is safe, the last device state unsent: the guest resumes here.
    /// </summary>
    CancelGoAheadLost,

    /// <summary>
    /// Streaming or released, and the destination host is no longer live (<see cref="SwitchoverSteps.GivenDestination"/>):
    /// nobody would look after the VM over there, and a dead host's stalled stream would hold the guest for minutes.
    /// Cancel (the guest runs on here) and abort.
    /// </summary>
    CancelDestinationGone,
}

/// <summary>
/// The source's side of the switchover as a pure decision, shared by <see cref="MigrationHandler"/> and the HA
/// simulation. <c>migrate-continue</c> goes once per migration, recorded in the migration record before it is sent:
/// QEMU leaves pre-switchover only when its migration thread next runs, so a loop that sent it whenever QEMU still
/// said pre-switchover sent it again, and when that second one arrived after QEMU had completed, the refusal
/// ("Migration not in expected state: completed") threw the source's half back to the record. Once released, the
/// migration is left to QEMU: a completed migration commits (never a cancel, which QEMU ignores then anyway), and the
/// source gives up only when QEMU fails it or the destination host is gone (<see cref="SourceStep.WaitForSwitchover"/>).
/// </summary>
public static class SwitchoverSteps
{
    /// <summary>How long the source waits, guest stopped, for the destination's agent to acknowledge the switchover.</summary>
    public static readonly TimeSpan AcknowledgementTimeout = TimeSpan.FromSeconds(2);

    /// <summary>
    /// How long QEMU may still hold at pre-switchover after the half found the release recorded (having recorded it, or
    /// resumed with it). Its migration thread acts on a go-ahead within milliseconds; a half that resumed after an
    /// agent restart between recording and sending it finds QEMU still waiting, and gives it up this long later.
    /// </summary>
    public static readonly TimeSpan GoAheadTimeout = TimeSpan.FromSeconds(5);

    /// <param name="record">The migration as last read (state <c>migrating</c>, <c>switching</c> or <c>switch-ack</c>).</param>
    /// <param name="status">What QEMU's <c>query-migrate</c> said after that read.</param>
    /// <param name="started">Whether this run of the half told QEMU to migrate.</param>
    /// <param name="heldFor">How long this run of the half has seen QEMU hold at pre-switchover, if it has.</param>
    /// <param name="releasedFor">How long this run of the half has known the release recorded, if it has.</param>
    /// <remarks>
    /// Both times are measured by the half on its host's monotonic clock: a step of the wall clock changes neither, and
    /// no time another host wrote is compared with this one's.
    /// </remarks>
    public static SourceStep Next(MigrationRecord record, MigrationStatus status, bool started, TimeSpan? heldFor, TimeSpan? releasedFor)
    {
        switch (status)
        {
            case MigrationStatus.Completed:
                return SourceStep.Commit;
            case MigrationStatus.Failed or MigrationStatus.Cancelled:
                return SourceStep.Abort;
            case MigrationStatus.None when !started:
                return SourceStep.AbortNotStarted;
            case MigrationStatus.PreSwitchover when record.SwitchoverReleasedUtc is not null:
                return releasedFor > GoAheadTimeout ? SourceStep.CancelGoAheadLost : SourceStep.WaitForSwitchover;
            case MigrationStatus.PreSwitchover:
                return record.State switch
                {
                    MigrationStates.Migrating => SourceStep.AskAcknowledgement,
                    MigrationStates.SwitchAcknowledged => SourceStep.Release,
                    _ when heldFor > AcknowledgementTimeout => SourceStep.CancelUnacknowledged,
                    _ => SourceStep.WaitForAcknowledgement,
                };
            default:
                return record.SwitchoverReleasedUtc is null ? SourceStep.Stream : SourceStep.WaitForSwitchover;
        }
    }

    /// <summary>Whether a step needs a look at the destination host's liveness (a pool database read).</summary>
    public static bool AsksAboutDestination(SourceStep step) => step is SourceStep.Stream or SourceStep.WaitForSwitchover;

    /// <summary>The step once the destination's liveness is known: only a gone destination changes it.</summary>
    public static SourceStep GivenDestination(SourceStep step, bool destinationLive) =>
        AsksAboutDestination(step) && !destinationLive ? SourceStep.CancelDestinationGone : step;
}
