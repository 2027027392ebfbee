using Corral.Api.AllowedOperations;
using Corral.Model;
using Xunit;
using static Corral.Model.VmOperations;
using static Corral.Model.VmPowerState;

namespace Corral.UnitTests.AllowedOperations;

/// <summary>VM rules against xapi's (research: allowed-ops.md §1), and Corral's departures, each named.</summary>
public sealed class VmOperationRulesTests
{
    private const string Ref = "OpaqueRef:vm";

    private static VmFacts Vm(VmPowerState state = Halted) => new() { Ref = Ref, PowerState = state };

    /// <summary>A running guest with Corral's agent reporting (PV drivers version and live guest metrics).</summary>
    private static VmFacts WithAgent(VmPowerState state) =>
        Vm(state) with { HasGuestMetrics = true, HasPvDrivers = true, GuestAgentLive = true, CurrentDomainType = DomainType.Hvm };

    private static void AssertAllowed(IEnumerable<VmOperations> expected, VmFacts vm) =>
        Assert.Equal(expected.Order(), VmOperationRules.Allowed(vm, ImplementedOperations.Everything).Order());

    private static OperationError Refused(VmFacts vm, VmOperations op, bool strict = true) =>
        VmOperationRules.Check(vm, op, strict) ?? throw new Xunit.Sdk.XunitException($"{op} was allowed");

    [Fact]
    public void A_halted_vm_lists_xapis_operations_but_migrate_send()
    {
        // xapi also lists migrate_send (a cross-pool copy of a halted VM); Corral's migrate_send is live only.
        AssertAllowed([Start, StartOn, Clone, Copy, Snapshot, Export, MetadataExport, Destroy, MakeIntoTemplate, ChangingDynamicRange,
            ChangingStaticRange, ChangingShadowMemory, ChangingNVRAM, CreateVtpm], Vm());
        AssertAllowed([Start, StartOn, Clone, Copy, Snapshot, Export, MetadataExport, Destroy, MakeIntoTemplate, ChangingDynamicRange,
            ChangingStaticRange, ChangingShadowMemory, ChangingNVRAM], Vm() with { Vtpms = 1 });
    }

    [Fact]
    public void A_running_vm_with_its_agent_lists_what_the_guest_supports()
    {
        // changing_dynamic_range: the balloon; changing_VCPUs_live: vCPU hot-plug.
        AssertAllowed([Pause, CleanShutdown, CleanReboot, HardShutdown, HardReboot, Suspend, Checkpoint, Snapshot, PoolMigrate, MigrateSend,
            ChangingDynamicRange, ChangingVCPUsLive, MetadataExport], WithAgent(Running));
    }

    [Fact]
    public void A_running_guest_without_tools_still_shuts_down_by_acpi_and_migrates()
    {
        // xapi: pause hard_shutdown hard_reboot snapshot changing_dynamic_range metadata_export. Corral presses the ACPI
        // button for a clean shutdown and QEMU migrates any guest; a clean reboot needs the agent, suspend the guest.
        AssertAllowed([Pause, CleanShutdown, HardShutdown, HardReboot, Snapshot, PoolMigrate, MigrateSend, ChangingDynamicRange, MetadataExport],
            Vm(Running) with { CurrentDomainType = DomainType.Hvm });
        Assert.Equal(["VM_LACKS_FEATURE", Ref], Refused(Vm(Running), CleanReboot).ToException().ErrorDescription);
        Assert.Equal("VM_LACKS_FEATURE", Refused(Vm(Running), Suspend).Code);
        Assert.Equal("VM_LACKS_FEATURE", Refused(Vm(Running), ChangingVCPUsLive).Code);
    }

    [Fact]
    public void A_clean_reboot_needs_the_agent_to_report_now_not_once()
    {
        var agentGone = WithAgent(Running) with { GuestAgentLive = false };
        Assert.Equal("VM_LACKS_FEATURE", Refused(agentGone, CleanReboot).Code);
        // Called anyway (not strict), Corral resets the VM: the call is not refused.
        Assert.Null(VmOperationRules.Check(agentGone, CleanReboot, strict: false));
    }

    [Fact]
    public void Paused_and_suspended_vms()
    {
        // Corral also migrates a paused VM (QEMU does), where xapi needs it running.
        AssertAllowed([Unpause, HardShutdown, HardReboot, Snapshot, MetadataExport, PoolMigrate, MigrateSend], Vm(Paused));
        AssertAllowed([Unpause, HardShutdown, HardReboot, Snapshot, MetadataExport, PoolMigrate, MigrateSend, Checkpoint], WithAgent(Paused));
        AssertAllowed([Resume, ResumeOn, HardShutdown, Checkpoint, Snapshot, Export, Destroy, MetadataExport], Vm(Suspended));
        AssertAllowed([Resume, ResumeOn, HardShutdown, Checkpoint, Snapshot, Export, Destroy, MetadataExport, Clone, Copy],
            Vm(Suspended) with { AllowCloneSuspended = true });
    }

    [Fact]
    public void Templates_and_snapshots()
    {
        var template = Vm() with { IsATemplate = true };
        AssertAllowed([Clone, Copy, Export, MetadataExport, Provision, Destroy, ChangingDynamicRange, ChangingStaticRange, ChangingShadowMemory,
            ChangingNVRAM], template);
        AssertAllowed([Clone, Copy, Export, MetadataExport, Provision, ChangingDynamicRange, ChangingStaticRange, ChangingShadowMemory, ChangingNVRAM],
            template with { IsDefaultTemplate = true });
        Assert.Equal(["VM_IS_TEMPLATE", Ref, "start"], Refused(template, Start).ToException().ErrorDescription);
        Assert.Equal(["VM_IS_TEMPLATE", Ref, "destroy"], Refused(template with { IsDefaultTemplate = true }, Destroy).ToException().ErrorDescription);

        var snapshot = Vm() with { IsASnapshot = true, IsATemplate = true };
        AssertAllowed([Revert, Clone, Copy, Export, Destroy, MetadataExport], snapshot);
        AssertAllowed([Revert, Clone, Copy, Export, Destroy, MetadataExport, HardShutdown], snapshot with { PowerState = Suspended });
        Assert.Equal(["VM_IS_SNAPSHOT", Ref, "start"], Refused(snapshot, Start).ToException().ErrorDescription);
        Assert.Equal("PROVISION_ONLY_ALLOWED_ON_TEMPLATE", Refused(Vm(), Provision).Code);
        Assert.Equal("REVERT_ONLY_ALLOWED_ON_SNAPSHOT", Refused(Vm(), Revert).Code);
    }

    [Theory]
    [InlineData(Start, "halted")]
    [InlineData(Unpause, "paused")]
    [InlineData(Resume, "suspended")]
    [InlineData(Destroy, "halted, suspended")]
    [InlineData(HardReboot, "paused, running")]
    [InlineData(HardShutdown, "paused, suspended, running")]
    [InlineData(Checkpoint, "paused, suspended, running")]
    [InlineData(ChangingStaticRange, "halted")]
    [InlineData(ChangingVCPUsLive, "running")]
    [InlineData(ChangingMemoryLive, "running")]
    [InlineData(PoolMigrate, "running, paused")]
    [InlineData(MigrateSend, "running, paused")]
    [InlineData(VmOperations.Shutdown, "running")]
    public void Bad_power_state_names_every_state_the_operation_runs_in(VmOperations op, string expected)
    {
        var state = expected.Contains("halted", StringComparison.Ordinal) ? Running : Halted;
        if (op == Destroy)
        {
            state = Paused;
        }

        Assert.Equal([ErrorCodes.VmBadPowerState, Ref, expected, state.ToString().ToLowerInvariant()], Refused(Vm(state), op).ToException().ErrorDescription);
    }

    [Fact]
    public void The_power_state_table_is_xapis_where_corral_does_not_depart()
    {
        var corral = new HashSet<VmOperations> { ChangingStaticRange, VmOperations.Shutdown, PoolMigrate, MigrateSend };
        var xapi = new Dictionary<VmOperations, VmPowerState[]>
        {
            [Start] = [Halted], [StartOn] = [Halted], [Provision] = [Halted], [MakeIntoTemplate] = [Halted], [ChangingShadowMemory] = [Halted],
            [ChangingNVRAM] = [Halted], [CreateVtpm] = [Halted], [Unpause] = [Paused], [Resume] = [Suspended], [ResumeOn] = [Suspended],
            [Pause] = [Running], [Suspend] = [Running], [CleanShutdown] = [Running], [CleanReboot] = [Running], [ChangingVCPUsLive] = [Running],
            [Clone] = [Halted], [Copy] = [Halted], [Destroy] = [Halted, Suspended], [Export] = [Halted, Suspended], [HardReboot] = [Paused, Running],
            [HardShutdown] = [Paused, Suspended, Running], [Checkpoint] = [Paused, Suspended, Running],
            [Snapshot] = [Halted, Paused, Suspended, Running], [Revert] = [Halted, Paused, Suspended, Running], [MetadataExport] = [Halted, Paused, Suspended, Running],
        };
        foreach (var (op, states) in xapi)
        {
            Assert.DoesNotContain(op, corral);
            Assert.Equal(states.Order(), VmOperationRules.PowerStatesFor(Vm(), op).Order());
        }

        Assert.Equal([Halted, Running], VmOperationRules.PowerStatesFor(Vm() with { IsControlDomain = true }, ChangingVCPUs));
        Assert.Equal([Halted, Suspended], VmOperationRules.PowerStatesFor(Vm() with { IsASnapshot = true }, Clone));
        Assert.Empty(VmOperationRules.PowerStatesFor(Vm(), Import));
    }

    [Fact]
    public void The_first_failing_check_wins()
    {
        // Blocked before the power state, the power state before another operation in progress.
        var blocked = Vm(Running) with { BlockedOperations = new Dictionary<VmOperations, string> { [Start] = "ask the admin" } };
        Assert.Equal(["OPERATION_BLOCKED", Ref, "ask the admin"], Refused(blocked, Start).ToException().ErrorDescription);
        var busy = Vm(Running) with { CurrentOperations = InProgress.Of(("OpaqueRef:t1", CleanShutdown)) };
        Assert.Equal(ErrorCodes.VmBadPowerState, Refused(busy, Start).Code);
        Assert.Equal([ErrorCodes.OtherOperationInProgress, "VM", Ref, "clean_shutdown", "OpaqueRef:t1"], Refused(busy, Pause).ToException().ErrorDescription);
    }

    [Fact]
    public void Operations_in_progress_allow_only_what_may_run_beside_them()
    {
        var shuttingDown = WithAgent(Running) with { CurrentOperations = InProgress.Of(("OpaqueRef:t1", CleanShutdown)) };
        AssertAllowed([HardShutdown, HardReboot], shuttingDown);
        var hardShutdown = shuttingDown with { CurrentOperations = InProgress.Of(("OpaqueRef:t1", HardShutdown)) };
        AssertAllowed([], hardShutdown);
        var hardReboot = shuttingDown with { CurrentOperations = InProgress.Of(("OpaqueRef:t1", HardReboot)) };
        AssertAllowed([HardShutdown], hardReboot);
        var exporting = Vm() with { CurrentOperations = InProgress.Of(("OpaqueRef:t1", Export)) };
        AssertAllowed([Clone, Copy, Export], exporting);
        var snapshotting = Vm() with { CurrentOperations = InProgress.Of(("OpaqueRef:t1", Snapshot)) };
        AssertAllowed([Snapshot], snapshotting);
        var starting = Vm() with { CurrentOperations = InProgress.Of(("OpaqueRef:t1", Start)) };
        AssertAllowed([], starting);
        Assert.True(VmOperationRules.AllowedConcurrently(Snapshot, InProgress.Of(("t", SnapshotWithQuiesce))));
        Assert.False(VmOperationRules.AllowedConcurrently(Snapshot, InProgress.Of(("t", SnapshotWithQuiesce), ("u", Snapshot))));
    }

    [Fact]
    public void Nothing_starts_beside_a_live_migration_which_corral_cannot_interrupt()
    {
        // xapi lets a hard shutdown (and, beside migrate_send, a clean shutdown or reboot) in, cancelling the migration.
        var migrating = WithAgent(Running) with { CurrentOperations = InProgress.Of(("OpaqueRef:t1", PoolMigrate)) };
        AssertAllowed([], migrating);
        Assert.False(VmOperationRules.AllowedConcurrently(CleanShutdown, InProgress.Of(("t", MigrateSend))));
        Assert.False(VmOperationRules.AllowedConcurrently(HardShutdown, InProgress.Of(("t", PoolMigrate))));
    }

    [Fact]
    public void Several_operations_in_progress_are_named_together()
    {
        var vm = Vm() with { CurrentOperations = InProgress.Of(("OpaqueRef:a", Clone), ("OpaqueRef:b", DataSourceOp)) };
        Assert.Equal([ErrorCodes.OtherOperationInProgress, "VM", Ref, "{clone,data_sources_op}", "{OpaqueRef:a,OpaqueRef:b}"],
            Refused(vm, Start).ToException().ErrorDescription);
    }

    [Fact]
    public void Immobile_and_nested_virt_vms()
    {
        var immobile = WithAgent(Running) with { NoMigrate = true };
        Assert.Equal(["VM_IS_IMMOBILE", Ref], Refused(immobile, PoolMigrate).ToException().ErrorDescription);
        Assert.Equal("VM_IS_IMMOBILE", Refused(immobile, Suspend).Code);
        Assert.Null(VmOperationRules.Check(immobile, PoolMigrate, strict: false));
        var nested = Vm() with { NestedVirt = true };
        Assert.Equal("VM_IS_USING_NESTED_VIRT", Refused(nested, ChangingDynamicRange).Code);
        Assert.Null(VmOperationRules.Check(nested, ChangingDynamicRange, strict: false));
    }

    [Fact]
    public void Control_domains()
    {
        var dom0 = Vm(Running) with { IsControlDomain = true, IsDomainZero = true };
        AssertAllowed([ChangingDynamicRange, MetadataExport], dom0);
        Assert.Equal([ErrorCodes.OperationNotAllowed, "This operation is not allowed on dom0"], Refused(dom0 with { PowerState = Halted }, Destroy).ToException().ErrorDescription);
        var driverDomain = Vm() with { IsControlDomain = true };
        Assert.Null(VmOperationRules.Check(driverDomain, Destroy));
        Assert.Equal([ErrorCodes.OperationNotAllowed, "This operation is not allowed on a control domain"], Refused(driverDomain, Clone).ToException().ErrorDescription);
    }

    [Fact]
    public void A_guest_that_says_it_cannot_suspend_neither_suspends_nor_migrates()
    {
        var vm = WithAgent(Running) with { GuestOther = new Dictionary<string, string> { ["data-cant-suspend-reason"] = "UEFI" } };
        Assert.Equal(["VM_NON_SUSPENDABLE", Ref, "UEFI"], Refused(vm, Suspend).ToException().ErrorDescription);
        Assert.Equal("VM_NON_SUSPENDABLE", Refused(vm, PoolMigrate).Code);
        var flagged = Vm(Running) with { HasGuestMetrics = true, GuestOther = new Dictionary<string, string> { ["feature-suspend"] = "1", ["feature-vcpu-hotplug"] = "1" } };
        Assert.Null(VmOperationRules.Check(flagged, Suspend));
        Assert.Null(VmOperationRules.Check(flagged, ChangingVCPUsLive));
        Assert.NotNull(VmOperationRules.Check(flagged with { GuestOther = new Dictionary<string, string> { ["feature-suspend"] = "0" } }, Suspend));
        Assert.Null(VmOperationRules.Check(Vm(Running) with { CurrentDomainType = DomainType.Pvh }, Suspend));
    }

    [Fact]
    public void Devices_that_hold_a_vm_in_place()
    {
        var vm = WithAgent(Running);
        Assert.Equal("VM_SNAPSHOT_WITH_QUIESCE_NOT_SUPPORTED", Refused(vm, SnapshotWithQuiesce).Code);
        // Corral quiesces through the QEMU guest agent: a live agent that can freeze (feature-quiesce) allows it.
        Assert.Null(VmOperationRules.Check(vm with { GuestOther = new Dictionary<string, string> { ["feature-quiesce"] = "1" } }, SnapshotWithQuiesce));
        Assert.Equal("VM_SNAPSHOT_WITH_QUIESCE_NOT_SUPPORTED",
            Refused(vm with { GuestAgentLive = false, GuestOther = new Dictionary<string, string> { ["feature-quiesce"] = "1" } }, SnapshotWithQuiesce).Code);
        Assert.Equal("VDI_ON_BOOT_MODE_INCOMPATIBLE_WITH_OPERATION", Refused(vm with { Vdis = [(true, false)] }, Snapshot).Code);
        Assert.Null(VmOperationRules.Check(vm with { Vdis = [(true, false)] }, PoolMigrate));
        Assert.Equal("VDI_ON_BOOT_MODE_INCOMPATIBLE_WITH_OPERATION", Refused(vm with { Vdis = [(true, true)] }, PoolMigrate).Code);
        Assert.Equal(["VM_HAS_PCI_ATTACHED", Ref], Refused(vm with { PassedThroughPcis = 1 }, PoolMigrate).ToException().ErrorDescription);
        Assert.Equal("VM_HAS_VGPU", Refused(vm with { Vgpus = 1 }, Suspend).Code);
        Assert.Null(VmOperationRules.Check(Vm(Suspended) with { Vgpus = 1 }, Checkpoint));
        Assert.Equal("VM_HAS_VUSBS", Refused(vm with { Vusbs = 1 }, Snapshot).Code);
        Assert.Null(VmOperationRules.Check(vm with { Vusbs = 1 }, HardShutdown));
    }

    [Fact]
    public void Membership_upgrade_and_vtpm_rules()
    {
        Assert.Equal(["VM_IS_PART_OF_AN_APPLIANCE", Ref, "OpaqueRef:app"], Refused(Vm() with { Appliance = "OpaqueRef:app" }, MakeIntoTemplate).ToException().ErrorDescription);
        Assert.Equal("VM_ASSIGNED_TO_PROTECTION_POLICY", Refused(Vm() with { ProtectionPolicy = "OpaqueRef:p" }, MakeIntoTemplate).Code);
        Assert.Equal("VM_ASSIGNED_TO_SNAPSHOT_SCHEDULE", Refused(Vm() with { SnapshotSchedule = "OpaqueRef:s" }, MakeIntoTemplate).Code);
        Assert.Equal(["NOT_SYSTEM_DOMAIN", Ref], Refused(Vm(), QueryServices).ToException().ErrorDescription);
        Assert.Null(VmOperationRules.Check(Vm() with { IsSystemDomain = true }, QueryServices));
        var upgrading = Vm() with { RollingUpgrade = true };
        Assert.Equal("NOT_SUPPORTED_DURING_UPGRADE", Refused(upgrading, Snapshot).Code);
        Assert.Null(VmOperationRules.Check(upgrading, Start));
        Assert.Equal(["VTPM_MAX_AMOUNT_REACHED", "1"], Refused(Vm() with { Vtpms = 1 }, CreateVtpm).ToException().ErrorDescription);
    }

    [Fact]
    public void Operations_xapi_never_lists_are_still_checked_when_called()
    {
        Assert.DoesNotContain(VmOperations.Shutdown, VmOperationRules.Candidates);
        Assert.DoesNotContain(AssertOperationValid, VmOperationRules.Candidates);
        Assert.Equal(19, VmOperationRules.NeverListed.Count);
        Assert.Null(VmOperationRules.Check(Vm(Running), VmOperations.Shutdown));
        Assert.Null(VmOperationRules.Check(Vm(Suspended), UpdateAllowedOperations));
        Assert.Null(VmOperationRules.Check(Vm(Paused), AssertOperationValid));
    }

    [Fact]
    public void Only_what_corral_implements_is_listed()
    {
        var corral = new ImplementedOperations(name => name is "VM.start" or "VM.clean_shutdown" or "VM.hard_shutdown" or "VM.destroy");
        Assert.Equal([Start, Destroy], VmOperationRules.Allowed(Vm(), corral));
        Assert.Equal([CleanShutdown, HardShutdown], VmOperationRules.Allowed(WithAgent(Running), corral));
    }

    [Fact]
    public void Operations_are_spelled_as_xapi_spells_them_in_errors()
    {
        Assert.Equal("assertoperationvalid", VmOperationRules.Display(AssertOperationValid));
        Assert.Equal("data_sources_op", VmOperationRules.Display(DataSourceOp));
        Assert.Equal("(unknown operation)", VmOperationRules.Display(ChangingVCPUs));
        Assert.Equal("changing_VCPUs_live", VmOperationRules.Display(ChangingVCPUsLive));
        Assert.Equal("pool_migrate", VmOperationRules.Display(PoolMigrate));
    }
}
