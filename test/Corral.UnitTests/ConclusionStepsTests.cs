using Corral.Agent.Vms;
using Corral.Hypervisor;
using Xunit;

namespace Corral.UnitTests;

/// <summary>
/// What the source of a live migration does with its own copy once the migration is decided (<see cref="ConclusionSteps"/>):
/// a moved VM's copy goes whatever QEMU says; a VM that stays keeps its copy, and a QEMU still sending it is cancelled so
/// that the guest runs again (the destination may have aborted while the source's QEMU held the guest at pre-switchover).
/// </summary>
public sealed class ConclusionStepsTests
{
    [Theory]
    [InlineData(MigrationStatus.Completed)]
    [InlineData(MigrationStatus.PreSwitchover)]
    [InlineData(MigrationStatus.None)]
    public void A_moved_vms_copy_here_is_killed(MigrationStatus status)
    {
        Assert.Equal(ConclusionStep.KillStaleCopy, ConclusionSteps.Next(moved: true, hasCopy: true, status));
    }

    [Theory]
    [InlineData(MigrationStatus.Setup)]
    [InlineData(MigrationStatus.Active)]
    [InlineData(MigrationStatus.PreSwitchover)]
    [InlineData(MigrationStatus.Other)]
    public void A_vm_that_stays_while_qemu_still_sends_it_has_its_migration_cancelled(MigrationStatus status)
    {
        Assert.Equal(ConclusionStep.CancelMigration, ConclusionSteps.Next(moved: false, hasCopy: true, status));
    }

    [Theory]
    [InlineData(MigrationStatus.None)]
    [InlineData(MigrationStatus.Failed)]
    [InlineData(MigrationStatus.Cancelled)]
    [InlineData(MigrationStatus.Completed)]
    public void A_vm_that_stays_with_qemus_migration_over_is_kept_as_it_is(MigrationStatus status)
    {
        Assert.Equal(ConclusionStep.Keep, ConclusionSteps.Next(moved: false, hasCopy: true, status));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Without_a_copy_there_is_nothing_to_do(bool moved)
    {
        Assert.Equal(ConclusionStep.Nothing, ConclusionSteps.Next(moved, hasCopy: false, MigrationStatus.PreSwitchover));
    }
}
