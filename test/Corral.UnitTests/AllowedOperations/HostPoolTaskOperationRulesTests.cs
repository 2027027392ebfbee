using Corral.Api.AllowedOperations;
using Corral.Model;
using Xunit;
using static Corral.Model.HostAllowedOperations;
using static Corral.Model.PoolAllowedOperations;

namespace Corral.UnitTests.AllowedOperations;

/// <summary>Host, pool and task rules against xapi's (research: allowed-ops.md §6, §7; taskHelper).</summary>
public sealed class HostPoolTaskOperationRulesTests
{
    private const string HostRef = "OpaqueRef:host";
    private const string PoolRef = "OpaqueRef:pool";

    private static HostFacts Host(bool enabled = true) => new() { Ref = HostRef, Enabled = enabled, Live = true };

    private static IReadOnlyList<HostAllowedOperations> Allowed(HostFacts host) => HostOperationRules.Allowed(host, ImplementedOperations.Everything);

    [Fact]
    public void Typical_host_lists()
    {
        Assert.Equal([Provision, Evacuate, VmStart, VmResume, VmMigrate, Enable], Allowed(Host()));
        Assert.Equal([Provision, Evacuate, HostAllowedOperations.Shutdown, Reboot, VmStart, VmResume, VmMigrate, HostAllowedOperations.ApplyUpdates, Enable],
            Allowed(Host(enabled: false)));
        Assert.Equal(["HOST_NOT_DISABLED"], HostOperationRules.Check(Host(), Reboot)!.ToException().ErrorDescription);
    }

    [Fact]
    public void Power_on_needs_a_dead_host_a_mode_and_the_plugin()
    {
        var host = Host() with { Live = false, PowerOnMode = "wake-on-lan", PowerOnPluginPresent = true };
        Assert.Null(HostOperationRules.Check(host, PowerOn));
        Assert.Equal(["HOST_IS_LIVE", HostRef], HostOperationRules.Check(host with { Live = true }, PowerOn)!.ToException().ErrorDescription);
        Assert.Null(HostOperationRules.Check(host with { Live = null }, PowerOn));
        Assert.Equal("HOST_POWER_ON_MODE_DISABLED", HostOperationRules.Check(host with { PowerOnMode = "" }, PowerOn)!.Code);
        Assert.Equal(["XENAPI_MISSING_PLUGIN", "power-on-host"], HostOperationRules.Check(host with { PowerOnPluginPresent = false }, PowerOn)!.ToException().ErrorDescription);
    }

    [Fact]
    public void An_evacuation_keeps_vms_from_arriving_and_the_other_way_round()
    {
        var evacuating = Host(enabled: false) with { CurrentOperations = InProgress.Of(("OpaqueRef:t", Evacuate)) };
        Assert.Equal([Evacuate, HostAllowedOperations.Shutdown, Reboot, VmStart, HostAllowedOperations.ApplyUpdates, Enable], Allowed(evacuating));
        Assert.Equal([ErrorCodes.OtherOperationInProgress, "host", HostRef, "evacuate", "OpaqueRef:t"],
            HostOperationRules.Check(evacuating, VmMigrate)!.ToException().ErrorDescription);
        var receiving = Host() with { CurrentOperations = InProgress.Of(("OpaqueRef:m", VmMigrate)) };
        Assert.Equal([ErrorCodes.OtherOperationInProgress, "host", HostRef, "VM.migrate", "OpaqueRef:m"],
            HostOperationRules.Check(receiving, Evacuate)!.ToException().ErrorDescription);
        Assert.Equal([Provision, VmStart, VmResume, VmMigrate, Enable], Allowed(receiving));
    }

    [Fact]
    public void Reboot_shutdown_updates_and_provision_exclude_one_another()
    {
        var disabled = Host(enabled: false);
        Assert.Equal("reboot", HostOperationRules.Check(disabled with { CurrentOperations = InProgress.Of(("t", Reboot)) }, HostAllowedOperations.Shutdown)!.Parameters[2]);
        Assert.Equal("shutdown", HostOperationRules.Check(disabled with { CurrentOperations = InProgress.Of(("t", HostAllowedOperations.Shutdown)) }, HostAllowedOperations.ApplyUpdates)!.Parameters[2]);
        Assert.Equal("apply_updates", HostOperationRules.Check(disabled with { CurrentOperations = InProgress.Of(("t", HostAllowedOperations.ApplyUpdates)) }, Enable)!.Parameters[2]);
        Assert.Equal("provision", HostOperationRules.Check(disabled with { CurrentOperations = InProgress.Of(("t", Provision)) }, Provision)!.Parameters[2]);
        Assert.Null(HostOperationRules.Check(disabled with { CurrentOperations = InProgress.Of(("t", VmStart)) }, Evacuate));
        Assert.Equal(["CLUSTERED_SR_DEGRADED", "health check"], HostOperationRules.Check(disabled with { ClusteredSrRecovering = "health check" }, Reboot)!.ToException().ErrorDescription);
    }

    [Fact]
    public void During_a_rolling_upgrade_a_host_lists_only_evacuate_and_provision()
    {
        Assert.Equal([Provision, Evacuate], Allowed(Host() with { RollingUpgrade = true }));
    }

    private static PoolFacts Pool(bool ha = false) => new() { Ref = PoolRef, HaEnabled = ha };

    private static IReadOnlyList<PoolAllowedOperations> Allowed(PoolFacts pool) => PoolOperationRules.Allowed(pool, ImplementedOperations.Everything);

    [Fact]
    public void Typical_pool_lists()
    {
        Assert.Equal(PoolOperationRules.Candidates.Where(o => o != HaDisable), Allowed(Pool()));
        Assert.Equal(PoolOperationRules.Candidates.Where(o => o is not (HaEnable or TlsVerificationEnable or ClusterCreate)), Allowed(Pool(ha: true)));
        // Corral: pool.enable_ha, disable_ha, designate_new_master and eject are implemented; get_updates (HTTP) and
        // the join-time certificate exchanges (internal calls) are no message Corral could implement.
        var corral = new ImplementedOperations(name => name is "pool.enable_ha" or "pool.disable_ha" or "pool.designate_new_master" or "pool.eject");
        Assert.Equal([HaEnable, DesignateNewMaster, Eject], PoolOperationRules.Allowed(Pool(), corral));
        Assert.False(ImplementedOperations.From(new Corral.Api.Dispatch.ApiRegistry()).Has(GetUpdates));
        Assert.Equal(["INCOMPATIBLE_CLUSTER_STACK_ACTIVE", "xhad"], PoolOperationRules.Check(Pool(ha: true) with { HaClusterStack = "xhad" }, ClusterCreate)!.ToException().ErrorDescription);
        Assert.Equal("CLUSTER_ALREADY_EXISTS", PoolOperationRules.Check(Pool() with { ClusterExists = true }, ClusterCreate)!.Code);
        Assert.Equal("NOT_SUPPORTED_DURING_UPGRADE", PoolOperationRules.Check(Pool() with { RollingUpgrade = true }, TlsVerificationEnable)!.Code);
        Assert.Equal([ErrorCodes.HaNotEnabled], PoolOperationRules.Check(Pool(), HaDisable)!.ToException().ErrorDescription);
    }

    [Fact]
    public void A_blocking_pool_operation_fails_its_kind_fast_and_queues_the_others()
    {
        var enabling = Pool() with { CurrentOperations = InProgress.Of(("OpaqueRef:t", HaEnable)) };
        Assert.Empty(Allowed(enabling));
        Assert.Equal(["HA_ENABLE_IN_PROGRESS"], PoolOperationRules.Check(enabling, DesignateNewMaster)!.ToException().ErrorDescription);
        Assert.Equal([ErrorCodes.OtherOperationInProgress, "pool", PoolRef], PoolOperationRules.Check(enabling, Eject)!.ToException().ErrorDescription);
        var both = Pool() with { CurrentOperations = InProgress.Of(("OpaqueRef:t", HaEnable), ("OpaqueRef:e", Eject)) };
        Assert.Equal([ErrorCodes.OtherOperationInProgress, "pool", PoolRef, "eject", "OpaqueRef:e"], PoolOperationRules.Check(both, CertRefresh)!.ToException().ErrorDescription);
        var ejecting = Pool() with { CurrentOperations = InProgress.Of(("OpaqueRef:e", Eject)) };
        Assert.Equal([ErrorCodes.OtherOperationInProgress, "pool", PoolRef, "eject", "OpaqueRef:e"], PoolOperationRules.Check(ejecting, HaEnable)!.ToException().ErrorDescription);
    }

    [Fact]
    public void A_task_offers_cancel_only_while_pending_and_cancellable()
    {
        var all = ImplementedOperations.Everything;
        Assert.Equal([TaskAllowedOperations.Cancel], TaskOperationRules.Allowed(new TaskFacts("t", TaskStatusType.Pending, true), all));
        Assert.Empty(TaskOperationRules.Allowed(new TaskFacts("t", TaskStatusType.Pending, false), all));
        Assert.Empty(TaskOperationRules.Allowed(new TaskFacts("t", TaskStatusType.Success, true), all));
        Assert.Empty(TaskOperationRules.Allowed(new TaskFacts("t", TaskStatusType.Cancelling, true), all));
        Assert.Empty(TaskOperationRules.Allowed(new TaskFacts("t", TaskStatusType.Pending, true), new ImplementedOperations(_ => false)));
    }
}
