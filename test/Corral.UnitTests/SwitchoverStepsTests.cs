using Corral.Agent.Vms;
using Corral.Api.Migration;
using Corral.Hypervisor;
using Xunit;

namespace Corral.UnitTests;

/// <summary>
/// The source's steps at a live migration's switchover (<see cref="SwitchoverSteps"/>): <c>migrate-continue</c> is
/// sent once, after the release is recorded; afterwards QEMU decides, and the source never cancels a migration QEMU
/// completed, nor on a second look at a QEMU that has not yet left pre-switchover.
/// </summary>
public sealed class SwitchoverStepsTests
{
    private static readonly DateTime Now = new(2026, 12, 4, 12, 0, 0, DateTimeKind.Utc);

    private static MigrationRecord Record(string state, DateTime? released = null) => new()
    {
        Id = "m1", VmRef = "OpaqueRef:vm", SourceRef = "OpaqueRef:h1", DestinationRef = "OpaqueRef:h2", TaskRef = "OpaqueRef:task",
        State = state, SwitchoverReleasedUtc = released,
    };

    [Fact]
    public void Acknowledged_and_waiting_in_qemu_the_switchover_is_released()
    {
        Assert.Equal(SourceStep.Release, SwitchoverSteps.Next(Record(MigrationStates.SwitchAcknowledged), MigrationStatus.PreSwitchover, true, TimeSpan.Zero, null));
    }

    [Theory]
    [InlineData(true, 10)] // this half's next look, 10 ms later: QEMU's migration thread has not run yet
    [InlineData(false, 0)] // the half resumed from the record after an error, or after an agent restart
    [InlineData(false, 3000)] // and has seen QEMU wait since
    public void Once_released_a_qemu_still_at_pre_switchover_is_waited_for_not_told_again(bool started, int millisecondsKnownReleased)
    {
        var record = Record(MigrationStates.SwitchAcknowledged, Now);
        var known = TimeSpan.FromMilliseconds(millisecondsKnownReleased);
        Assert.Equal(SourceStep.WaitForSwitchover, SwitchoverSteps.Next(record, MigrationStatus.PreSwitchover, started, started ? known + TimeSpan.FromMilliseconds(30) : known, known));
    }

    [Fact]
    public void Once_released_qemu_sending_the_last_device_state_is_waited_for_without_the_streaming_checks()
    {
        var record = Record(MigrationStates.SwitchAcknowledged, Now.AddMilliseconds(-20));
        Assert.Equal(SourceStep.WaitForSwitchover, SwitchoverSteps.Next(record, MigrationStatus.Active, true, TimeSpan.FromMilliseconds(40), TimeSpan.FromMilliseconds(20)));
        Assert.Equal(SourceStep.Stream, SwitchoverSteps.Next(Record(MigrationStates.Migrating), MigrationStatus.Active, true, null, null));
    }

    [Theory]
    [InlineData(MigrationStates.Migrating, null)]
    [InlineData(MigrationStates.Switching, null)]
    [InlineData(MigrationStates.SwitchAcknowledged, null)]
    [InlineData(MigrationStates.SwitchAcknowledged, 10)]
    [InlineData(MigrationStates.SwitchAcknowledged, 60_000)]
    public void A_migration_qemu_completed_is_committed_never_cancelled(string state, int? millisecondsSinceRelease)
    {
        var record = Record(state, millisecondsSinceRelease is { } ms ? Now.AddMilliseconds(-ms) : null);
        var known = millisecondsSinceRelease is { } knownMs ? TimeSpan.FromMilliseconds(knownMs) : (TimeSpan?)null;
        Assert.Equal(SourceStep.Commit, SwitchoverSteps.Next(record, MigrationStatus.Completed, false, null, known));
    }

    [Fact]
    public void A_go_ahead_that_never_reached_qemu_is_given_up_on_at_pre_switchover_only()
    {
        var record = Record(MigrationStates.SwitchAcknowledged, Now);
        var tooLong = SwitchoverSteps.GoAheadTimeout + TimeSpan.FromMilliseconds(1);
        Assert.Equal(SourceStep.CancelGoAheadLost, SwitchoverSteps.Next(record, MigrationStatus.PreSwitchover, false, tooLong, tooLong));
        Assert.Equal(SourceStep.WaitForSwitchover, SwitchoverSteps.Next(record, MigrationStatus.Active, false, null, tooLong));
    }

    [Fact]
    public void The_time_written_in_the_record_is_never_compared_with_this_host_s_clock()
    {
        // Released (by this host's wall clock) long ago or in the future, as another host's clock or a step may have it:
        // only the time this run of the half has known it counts.
        foreach (var written in new[] { Now.AddHours(-1), Now.AddHours(1) })
        {
            var record = Record(MigrationStates.SwitchAcknowledged, written);
            Assert.Equal(SourceStep.WaitForSwitchover, SwitchoverSteps.Next(record, MigrationStatus.PreSwitchover, false, TimeSpan.Zero, TimeSpan.Zero));
        }
    }

    [Fact]
    public void The_destination_is_asked_and_waited_for_until_the_acknowledgement_timeout()
    {
        Assert.Equal(SourceStep.AskAcknowledgement, SwitchoverSteps.Next(Record(MigrationStates.Migrating), MigrationStatus.PreSwitchover, true, TimeSpan.Zero, null));
        var switching = Record(MigrationStates.Switching);
        Assert.Equal(SourceStep.WaitForAcknowledgement, SwitchoverSteps.Next(switching, MigrationStatus.PreSwitchover, true, TimeSpan.FromSeconds(1), null));
        Assert.Equal(SourceStep.CancelUnacknowledged,
            SwitchoverSteps.Next(switching, MigrationStatus.PreSwitchover, true, SwitchoverSteps.AcknowledgementTimeout + TimeSpan.FromMilliseconds(1), null));
    }

    [Fact]
    public void Qemu_ending_the_migration_or_never_starting_it_aborts()
    {
        Assert.Equal(SourceStep.Abort, SwitchoverSteps.Next(Record(MigrationStates.Migrating), MigrationStatus.Failed, true, null, null));
        Assert.Equal(SourceStep.Abort, SwitchoverSteps.Next(Record(MigrationStates.Switching), MigrationStatus.Cancelled, true, TimeSpan.Zero, null));
        Assert.Equal(SourceStep.AbortNotStarted, SwitchoverSteps.Next(Record(MigrationStates.Migrating), MigrationStatus.None, false, null, null));
        Assert.Equal(SourceStep.Stream, SwitchoverSteps.Next(Record(MigrationStates.Migrating), MigrationStatus.None, true, null, null));
    }

    [Fact]
    public void The_release_survives_the_record_s_round_trip()
    {
        var released = Record(MigrationStates.SwitchAcknowledged, Now);
        Assert.Equal(Now, MigrationRecord.FromJson(released.ToJson()).SwitchoverReleasedUtc);
        Assert.Null(MigrationRecord.FromJson(Record(MigrationStates.SwitchAcknowledged).ToJson()).SwitchoverReleasedUtc);
    }
}
