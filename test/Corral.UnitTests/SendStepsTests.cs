using Corral.Agent.Vms;
using Corral.Api.Migration;
using Corral.Hypervisor;
using Xunit;

namespace Corral.UnitTests;

/// <summary>
/// The source's half of a live migration before and around QEMU's part (<see cref="SendRun"/>), the pace both the agent
/// and the simulation keep (<see cref="MigrationPace"/>), and a destination that is gone (<see cref="SwitchoverSteps.GivenDestination"/>).
/// </summary>
public sealed class SendStepsTests
{
    private sealed class ManualClock : TimeProvider
    {
        private long _ticks;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => _ticks;

        public void Advance(TimeSpan by) => _ticks += by.Ticks;
    }

    private static MigrationRecord Record(string state, int disks = 0, DateTime? released = null) => new()
    {
        Id = "m1", VmRef = "OpaqueRef:vm", SourceRef = "OpaqueRef:h1", DestinationRef = "OpaqueRef:h2", TaskRef = "OpaqueRef:task",
        State = state, SwitchoverReleasedUtc = released,
        Disks = Enumerable.Range(0, disks).Select(i => new DiskMove
        {
            VbdRef = $"OpaqueRef:vbd{i}", DiskIndex = i, SourceVdiRef = "OpaqueRef:a", SourceSrRef = "OpaqueRef:s1", SourceLocation = "a.qcow2",
            DestinationSrRef = "OpaqueRef:s2", DestinationVdiRef = "OpaqueRef:b", DestinationVdiUuid = "b", VirtualSize = 1 << 30,
        }).ToList(),
    };

    [Theory]
    [InlineData(null)]
    [InlineData(MigrationStates.Completed)]
    [InlineData(MigrationStates.Aborting)]
    public void A_decided_or_removed_record_is_concluded(string? state)
    {
        var run = new SendRun(new ManualClock());
        Assert.Equal(SendStep.Conclude, run.Next(state is null ? null : Record(state), hasSourceCopy: true, mirrorsCaughtUp: false));
    }

    [Fact]
    public void The_destination_gets_a_minute_to_get_ready_on_this_runs_own_clock()
    {
        var clock = new ManualClock();
        var run = new SendRun(clock);
        clock.Advance(MigrationPace.ReadyTimeout);
        Assert.Equal(SendStep.WaitForReady, run.Next(Record(MigrationStates.Preparing), true, false));
        clock.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(SendStep.AbortNotReady, run.Next(Record(MigrationStates.Preparing), true, false));

        // A resumed run (the agent restarted) counts afresh.
        Assert.Equal(SendStep.WaitForReady, new SendRun(clock).Next(Record(MigrationStates.Preparing), true, false));
    }

    [Fact]
    public void Local_disks_are_mirrored_before_memory_is_sent_and_only_by_the_run_that_started_the_mirrors()
    {
        var run = new SendRun(new ManualClock());
        Assert.Equal(SendStep.StartMigration, run.Next(Record(MigrationStates.Ready), true, false));
        Assert.Equal(SendStep.StartMirrors, run.Next(Record(MigrationStates.Ready, disks: 2), true, false));
        Assert.False(run.AsksAboutMirrors(Record(MigrationStates.Mirroring, disks: 2)));
        Assert.Equal(SendStep.AbortMirrorsLost, run.Next(Record(MigrationStates.Mirroring, disks: 2), true, false));

        run.MirrorsStarted = true;
        Assert.True(run.AsksAboutMirrors(Record(MigrationStates.Mirroring, disks: 2)));
        Assert.Equal(SendStep.WaitForMirrors, run.Next(Record(MigrationStates.Mirroring, disks: 2), true, mirrorsCaughtUp: false));
        Assert.Equal(SendStep.StartMigration, run.Next(Record(MigrationStates.Mirroring, disks: 2), true, mirrorsCaughtUp: true));
    }

    [Theory]
    [InlineData(MigrationStates.Migrating)]
    [InlineData(MigrationStates.Switching)]
    [InlineData(MigrationStates.SwitchAcknowledged)]
    public void Past_the_start_the_half_follows_qemu_while_the_source_copy_lives(string state)
    {
        var run = new SendRun(new ManualClock());
        Assert.Equal(SendStep.FollowQemu, run.Next(Record(state), hasSourceCopy: true, false));
        Assert.Equal(SendStep.AbortSourceCopyGone, run.Next(Record(state), hasSourceCopy: false, false));
    }

    [Fact]
    public void An_unacknowledged_switchover_is_cancelled_after_the_timeout_counted_from_this_runs_first_sight_of_pre_switchover()
    {
        var clock = new ManualClock();
        var run = new SendRun(clock) { Started = true };
        var switching = Record(MigrationStates.Switching);
        clock.Advance(TimeSpan.FromMinutes(5)); // time before QEMU held does not count
        Assert.Equal(SourceStep.WaitForAcknowledgement, run.Follow(switching, MigrationStatus.PreSwitchover));
        clock.Advance(SwitchoverSteps.AcknowledgementTimeout);
        Assert.Equal(SourceStep.WaitForAcknowledgement, run.Follow(switching, MigrationStatus.PreSwitchover));
        clock.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(SourceStep.CancelUnacknowledged, run.Follow(switching, MigrationStatus.PreSwitchover));
    }

    [Fact]
    public void A_go_ahead_qemu_never_acted_on_is_given_up_after_its_timeout_from_when_this_run_knew_the_release()
    {
        var clock = new ManualClock();
        var run = new SendRun(clock);
        var released = Record(MigrationStates.SwitchAcknowledged, released: new DateTime(2020, 1, 1, 0, 0, 0, DateTimeKind.Utc));
        Assert.Equal(SourceStep.WaitForSwitchover, run.Follow(released, MigrationStatus.PreSwitchover));
        clock.Advance(SwitchoverSteps.GoAheadTimeout + TimeSpan.FromMilliseconds(1));
        Assert.Equal(SourceStep.CancelGoAheadLost, run.Follow(released, MigrationStatus.PreSwitchover));
    }

    [Fact]
    public void Only_streaming_or_a_released_switchover_gives_up_on_a_gone_destination()
    {
        Assert.Equal(SourceStep.CancelDestinationGone, SwitchoverSteps.GivenDestination(SourceStep.Stream, destinationLive: false));
        Assert.Equal(SourceStep.CancelDestinationGone, SwitchoverSteps.GivenDestination(SourceStep.WaitForSwitchover, destinationLive: false));
        Assert.Equal(SourceStep.Stream, SwitchoverSteps.GivenDestination(SourceStep.Stream, destinationLive: true));

        // A completed migration commits, whatever became of the destination's host since.
        Assert.False(SwitchoverSteps.AsksAboutDestination(SourceStep.Commit));
        Assert.Equal(SourceStep.Commit, SwitchoverSteps.GivenDestination(SourceStep.Commit, destinationLive: false));
    }

    [Fact]
    public void The_half_looks_again_at_once_after_acting_often_near_the_switchover_and_every_poll_otherwise()
    {
        Assert.Null(MigrationPace.After(SendStep.StartMigration));
        Assert.Equal(MigrationPace.Poll, MigrationPace.After(SendStep.WaitForReady));
        Assert.Equal(MigrationPace.Poll, MigrationPace.After(SourceStep.Stream));
        Assert.Equal(MigrationPace.FastPoll, MigrationPace.After(SourceStep.WaitForAcknowledgement));
        Assert.Equal(MigrationPace.FastPoll, MigrationPace.After(SourceStep.WaitForSwitchover));
        Assert.Null(MigrationPace.After(SourceStep.Release));
    }
}
