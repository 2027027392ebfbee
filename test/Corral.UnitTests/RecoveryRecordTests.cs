using Corral.HighAvailability;
using Xunit;

namespace Corral.UnitTests;

/// <summary>How a live host hands VMs it fenced or lost to HA: merged into its recovery record, whatever state it is in.</summary>
public sealed class RecoveryRecordTests
{
    private static HaVm Vm(string name, string priority = RestartPriority.Restart, long order = 0) =>
        new(name, name, "Halted", "OpaqueRef:NULL", priority, order, 0, 512);

    [Fact]
    public void A_host_without_a_record_gets_one_restarting_its_vms_in_priority_and_order()
    {
        var record = RecoveryRecord.WithRestartsRequested(null, "h2", [Vm("z", RestartPriority.BestEffort), Vm("b", order: 1), Vm("a", order: 1), Vm("c")]);

        Assert.Equal(RecoveryStates.Restarting, record.State);
        Assert.Equal("h2", record.HostRef);
        Assert.Equal(["c", "a", "b", "z"], record.Restarts.Select(r => r.VmRef));
    }

    [Fact]
    public void Unprotected_vms_are_not_handed_over()
    {
        var record = RecoveryRecord.WithRestartsRequested(null, "h2", [Vm("a"), Vm("scratch", RestartPriority.Unprotected)]);

        Assert.Equal(["a"], record.Restarts.Select(r => r.VmRef));
    }

    [Fact]
    public void A_record_the_master_was_waiting_on_becomes_restarting_with_only_the_host_s_vms()
    {
        var waiting = new RecoveryRecord { HostRef = "h2", State = RecoveryStates.Detected, Heartbeat = 7, WaitingSinceUtc = DateTime.UnixEpoch };

        var record = RecoveryRecord.WithRestartsRequested(waiting, "h2", [Vm("a")]);

        Assert.Equal(RecoveryStates.Restarting, record.State);
        Assert.Equal(["a"], record.Restarts.Select(r => r.VmRef));
    }

    [Fact]
    public void A_vm_restarted_once_and_lost_again_is_restarted_again_and_others_keep_their_progress()
    {
        var restarting = new RecoveryRecord
        {
            HostRef = "h2",
            State = RecoveryStates.Restarting,
            Restarts = [new RestartItem("a", RestartPriority.Restart, 0), new RestartItem("b", RestartPriority.Restart, 0, 1)],
            Done = ["a", "b"],
            Reported = ["a"],
            LastStartUtc = DateTime.UnixEpoch.AddDays(1),
        };

        var record = RecoveryRecord.WithRestartsRequested(restarting, "h2", [Vm("a")]);

        Assert.Equal(["a", "b"], record.Restarts.Select(r => r.VmRef));
        Assert.Equal(["b"], record.Done);
        Assert.Empty(record.Reported);
        Assert.Equal(restarting.LastStartUtc, record.LastStartUtc);
    }

    [Fact]
    public void The_record_survives_its_json_unchanged()
    {
        var record = RecoveryRecord.WithRestartsRequested(null, "h2", [Vm("a"), Vm("b", RestartPriority.BestEffort)]) with { WaitingSinceUtc = DateTime.UtcNow };

        Assert.Equal(record.ToJson(), RecoveryRecord.FromJson(record.ToJson()).ToJson());
    }
}
