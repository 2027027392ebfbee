using Corral.Api.Migration;
using Corral.Hypervisor;

namespace Corral.Agent.Vms;

/// <summary>What the source of a live migration does next, on one reading of the migration record.</summary>
public enum SendStep
{
    /// <summary>The record is gone, completed or aborting: settle this host's copy and end the caller's task.</summary>
    Conclude,

    /// <summary>Preparing: the destination starts its incoming copy.</summary>
    WaitForReady,

    /// <summary>Preparing for longer than <see cref="MigrationPace.ReadyTimeout"/>: abort.</summary>
    AbortNotReady,

    /// <summary>Ready, with local disks to move: record <c>mirroring</c>, then start a mirror of each to the destination.</summary>
    StartMirrors,

    /// <summary>
    /// Ready (or every disk mirror caught up): share the VM's lease, record <c>migrating</c>, then tell QEMU to send. A
    /// lease refused aborts the migration.
    /// </summary>
    StartMigration,

    /// <summary>Mirroring, but not by this run of the half (the agent restarted while copying): start over, abort.</summary>
    AbortMirrorsLost,

    /// <summary>Mirroring: the copies have not caught up yet (a failed copy or a gone destination aborts while looking).</summary>
    WaitForMirrors,

    /// <summary>Migrating or later and the source's QEMU is gone: abort.</summary>
    AbortSourceCopyGone,

    /// <summary>Migrating or later: follow QEMU (<see cref="SendRun.Follow"/>, <see cref="SwitchoverSteps"/>).</summary>
    FollowQemu,
}

/// <summary>The pace of both halves of a live migration, in one place for the agent and the simulation.</summary>
public static class MigrationPace
{
    /// <summary>How often a half looks again while nothing is imminent.</summary>
    public static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(100);

    /// <summary>While a migration nears its switchover both sides look often: the guest is stopped while they talk.</summary>
    public static readonly TimeSpan FastPoll = TimeSpan.FromMilliseconds(10);

    /// <summary>How long the source waits for the destination to get ready.</summary>
    public static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(60);

    /// <summary>How often the destination checks that the source host is still live.</summary>
    public static readonly TimeSpan SourceCheck = TimeSpan.FromSeconds(1);

    /// <summary>How long the source's half waits after a step before it reads the record again (null: at once).</summary>
    public static TimeSpan? After(SendStep step) => step is SendStep.WaitForReady or SendStep.WaitForMirrors ? Poll : null;

    /// <summary>How long the source's half waits after a step of following QEMU (null: at once).</summary>
    public static TimeSpan? After(SourceStep step) => step switch
    {
        SourceStep.Stream => Poll,
        SourceStep.WaitForAcknowledgement or SourceStep.WaitForSwitchover => FastPoll,
        _ => null,
    };
}

/// <summary>
/// One run of the source's half of a live migration: what it knows beyond the record (a resumed run starts afresh)
/// and its decisions, pure over the record, what the caller found and the injected clock. Shared by
/// <see cref="MigrationHandler"/> and the HA simulation, which drives this rather than a copy of it. Its times are the
/// clock's timestamps: the host's monotonic clock for the agent, which no wall-clock step moves.
/// </summary>
public sealed class SendRun(TimeProvider time)
{
    private readonly long _since = time.GetTimestamp();
    private long? _heldSince;
    private long? _releaseKnownSince;

    /// <summary>Whether this run told QEMU to migrate.</summary>
    public bool Started { get; set; }

    /// <summary>Whether this run started the disk mirrors.</summary>
    public bool MirrorsStarted { get; set; }

    /// <summary>Whether <see cref="Next"/> needs to know if the disk mirrors caught up: a look at QEMU's block jobs.</summary>
    public bool AsksAboutMirrors(MigrationRecord? record) => record?.State == MigrationStates.Mirroring && MirrorsStarted;

    /// <param name="record">The record as read (null: gone, or another migration's).</param>
    /// <param name="hasSourceCopy">Whether this host still has the VM's QEMU.</param>
    /// <param name="mirrorsCaughtUp">Whether every disk mirror caught up (looked at when <see cref="AsksAboutMirrors"/>).</param>
    public SendStep Next(MigrationRecord? record, bool hasSourceCopy, bool mirrorsCaughtUp) => record?.State switch
    {
        null or MigrationStates.Completed or MigrationStates.Aborting => SendStep.Conclude,
        MigrationStates.Preparing => time.GetElapsedTime(_since) > MigrationPace.ReadyTimeout ? SendStep.AbortNotReady : SendStep.WaitForReady,
        MigrationStates.Ready => record.Disks.Count > 0 ? SendStep.StartMirrors : SendStep.StartMigration,
        MigrationStates.Mirroring when !MirrorsStarted => SendStep.AbortMirrorsLost,
        MigrationStates.Mirroring => mirrorsCaughtUp ? SendStep.StartMigration : SendStep.WaitForMirrors,
        _ => hasSourceCopy ? SendStep.FollowQemu : SendStep.AbortSourceCopyGone,
    };

    /// <summary>
    /// The step on what QEMU's <c>query-migrate</c> said after the record was read (<see cref="SwitchoverSteps.Next"/>),
    /// timing how long this run has seen QEMU hold at pre-switchover and known the release recorded.
    /// </summary>
    public SourceStep Follow(MigrationRecord record, MigrationStatus status)
    {
        if (status == MigrationStatus.PreSwitchover)
        {
            _heldSince ??= time.GetTimestamp();
        }

        if (record.SwitchoverReleasedUtc is not null)
        {
            _releaseKnownSince ??= time.GetTimestamp();
        }

        return SwitchoverSteps.Next(record, status, Started, Since(_heldSince), Since(_releaseKnownSince));
    }

    private TimeSpan? Since(long? timestamp) => timestamp is { } t ? time.GetElapsedTime(t) : null;
}
