using Corral.Model;
using static Corral.Model.VmOperations;
using static Corral.Model.VmPowerState;

namespace Corral.Api.AllowedOperations;

/// <summary>
/// Which operations a VM allows, as xapi decides them (xapi_vm_lifecycle: one checker, first failing check wins), with
/// Corral's own departures where Corral does less or more than xapi, each said where it happens. No I/O.
/// </summary>
public static class VmOperationRules
{
    /// <summary>Operations xapi never lists, though it checks them when called.</summary>
    public static readonly IReadOnlySet<VmOperations> NeverListed = new HashSet<VmOperations>
    {
        CreateTemplate, PowerStateReset, Csvm, GetBootRecord, SendSysrq, SendTrigger, QueryServices, VmOperations.Shutdown, CallPlugin,
        ChangingMemoryLive, AwaitingMemoryLive, ChangingMemoryLimits, ChangingShadowMemoryLive, ChangingVCPUs, AssertOperationValid,
        DataSourceOp, UpdateAllowedOperations, Import, Reverting,
    };

    /// <summary>The operations considered for <c>allowed_operations</c>, in enum order.</summary>
    public static readonly IReadOnlyList<VmOperations> Candidates = Enum.GetValues<VmOperations>().Where(o => !NeverListed.Contains(o)).ToList();

    private static readonly HashSet<VmOperations> RollingUpgradeAllowed =
    [
        AssertOperationValid, ChangingMemoryLive, ChangingShadowMemoryLive, ChangingVCPUsLive, CleanReboot, CleanShutdown, Clone, Copy, Csvm,
        Destroy, Export, GetBootRecord, HardReboot, HardShutdown, Import, MakeIntoTemplate, MigrateSend, Pause, PoolMigrate, PowerStateReset,
        Provision, Resume, ResumeOn, SendSysrq, SendTrigger, Start, StartOn, Suspend, Unpause, UpdateAllowedOperations,
    ];

    private static readonly VmOperations[] TemplateAllowed =
        [ChangingDynamicRange, ChangingStaticRange, ChangingMemoryLimits, ChangingShadowMemory, ChangingVCPUs, ChangingNVRAM, Clone, Copy, Export, MetadataExport, Provision];

    private static readonly VmOperations[] SnapshotAllowed = [Revert, Clone, Copy, Export, Destroy, HardShutdown, MetadataExport];

    private static readonly VmOperations[] ControlDomainAllowed =
    [
        DataSourceOp, ChangingMemoryLive, AwaitingMemoryLive, MetadataExport, ChangingDynamicRange, ChangingMemoryLimits, ChangingStaticRange,
        Start, StartOn, ChangingVCPUs, Destroy,
    ];

    private static readonly VmOperations[] SuspendLike = [Suspend, Checkpoint, PoolMigrate, MigrateSend];

    public static IReadOnlyList<VmOperations> Allowed(VmFacts vm, ImplementedOperations implemented) =>
        Candidates.Where(op => implemented.Has(op) && Check(vm, op) is null).ToList();

    /// <summary>
    /// The first reason <paramref name="op"/> may not run now, or null. <paramref name="strict"/> (the list, and
    /// most calls) also asks for the guest's cooperation where the operation needs it.
    /// </summary>
    public static OperationError? Check(VmFacts vm, VmOperations op, bool strict = true) =>
        Blocked(vm, op)
        ?? PowerState(vm, op)
        ?? Concurrency(vm, op)
        ?? TemplateOrSnapshot(vm, op)
        ?? Mobility(vm, op, strict)
        ?? ControlDomain(vm, op)
        ?? GuestFeatures(vm, op, strict)
        ?? Devices(vm, op)
        ?? Membership(vm, op);

    /// <summary>
    /// The power states <paramref name="op"/> runs in, in the order xapi names them in VM_BAD_POWER_STATE. Where
    /// Corral's handler accepts other states than xapi's, Corral's are given.
    /// </summary>
    public static IReadOnlyList<VmPowerState> PowerStatesFor(VmFacts vm, VmOperations op) => op switch
    {
        // A running VM's static range is its QEMU's RAM size, which stays; its dynamic range is its balloon's (xapi's states).
        ChangingStaticRange => [Halted],
        // Corral's VM.shutdown asks the guest to power off and forces it only if it does not: a guest must run to be asked.
        VmOperations.Shutdown => [Running],
        // QEMU migrates a paused machine as well as a running one; Corral's migrate_send is a live migration inside
        // the pool, so it does not copy halted or suspended VMs as xapi's cross-pool migrate_send does.
        PoolMigrate or MigrateSend => [Running, Paused],
        _ => XapiPowerStatesFor(vm, op),
    };

    private static IReadOnlyList<VmPowerState> XapiPowerStatesFor(VmFacts vm, VmOperations op) => op switch
    {
        Import => [],
        ChangingVCPUs or ChangingStaticRange or ChangingMemoryLimits => vm.IsControlDomain ? [Halted, Running] : [Halted],
        ChangingShadowMemory or ChangingNVRAM or MakeIntoTemplate or Provision or Start or StartOn or CreateVtpm => [Halted],
        Unpause => [Paused],
        Csvm or Resume or ResumeOn => [Suspended],
        AwaitingMemoryLive or CallPlugin or CleanReboot or CleanShutdown or ChangingMemoryLive or ChangingShadowMemoryLive or ChangingVCPUsLive
            or DataSourceOp or Pause or PoolMigrate or SendSysrq or SendTrigger or SnapshotWithQuiesce or Suspend => [Running],
        ChangingDynamicRange => [Halted, Running],
        Clone or Copy => vm.IsASnapshot || vm.AllowCloneSuspended ? [Halted, Suspended] : [Halted],
        CreateTemplate or Destroy or Export => [Halted, Suspended],
        HardReboot => [Paused, Running],
        Checkpoint or GetBootRecord or VmOperations.Shutdown or HardShutdown => [Paused, Suspended, Running],
        MigrateSend => [Halted, Suspended, Running],
        _ => [Halted, Paused, Suspended, Running],
    };

    private static OperationError? Blocked(VmFacts vm, VmOperations op) =>
        vm.BlockedOperations.TryGetValue(op, out var hint) ? OperationError.Of("OPERATION_BLOCKED", vm.Ref, hint) : null;

    private static OperationError? PowerState(VmFacts vm, VmOperations op)
    {
        var states = PowerStatesFor(vm, op);
        return states.Contains(vm.PowerState)
            ? null
            : OperationError.Of(ErrorCodes.VmBadPowerState, vm.Ref, string.Join(", ", states.Select(Lower)), Lower(vm.PowerState));
    }

    public static string Lower(VmPowerState state) => state.ToString().ToLowerInvariant();

    private static OperationError? Concurrency(VmFacts vm, VmOperations op)
    {
        var current = vm.CurrentOperations;
        if (current.IsEmpty || AllowedConcurrently(op, current))
        {
            return null;
        }

        var (ops, tasks) = current.Entries.Count == 1
            ? (Display(current.Entries[0].Value), current.Entries[0].Key)
            : ("{" + string.Join(",", current.Entries.Select(e => Display(e.Value))) + "}", "{" + string.Join(",", current.Entries.Select(e => e.Key)) + "}");
        return OperationError.Of(ErrorCodes.OtherOperationInProgress, XenClasses.VM, vm.Ref, ops, tasks);
    }

    /// <summary>Whether <paramref name="op"/> may start while <paramref name="current"/> (not empty) run.</summary>
    public static bool AllowedConcurrently(VmOperations op, InProgress<VmOperations> current)
    {
        // Corral cannot interrupt a live migration, and an operation queued behind one would run on the host the VM
        // left: nothing else starts on a VM while it migrates (xapi lets a few in, cancelling the migration).
        if (current.Any(o => o is PoolMigrate or MigrateSend))
        {
            return false;
        }

        bool Together(params VmOperations[] group) => group.Contains(op) && current.Entries.All(e => group.Contains(e.Value));
        var ops = current.Entries.Select(e => e.Value).ToList();
        return Together(Clone, Copy, Export) || Together(Snapshot, Checkpoint) || Together(GetBootRecord) || op switch
        {
            HardShutdown => !ops.Contains(HardShutdown),
            HardReboot => !ops.Contains(HardShutdown) && !ops.Contains(HardReboot),
            Snapshot => ops is [SnapshotWithQuiesce],
            MetadataExport or CleanShutdown or CleanReboot => ops is [MigrateSend],
            _ => false,
        };
    }

    private static OperationError? TemplateOrSnapshot(VmFacts vm, VmOperations op)
    {
        if (vm.IsATemplate && !vm.IsASnapshot && !TemplateAllowed.Contains(op) && !(op is Destroy or MigrateSend && !vm.IsDefaultTemplate))
        {
            return OperationError.Of(ErrorCodes.VmIsTemplate, vm.Ref, Display(op));
        }

        if (vm.IsASnapshot && !SnapshotAllowed.Contains(op))
        {
            return OperationError.Of("VM_IS_SNAPSHOT", vm.Ref, Display(op));
        }

        if (op == Provision && !vm.IsATemplate)
        {
            return OperationError.Of(ErrorCodes.ProvisionOnlyAllowedOnTemplate);
        }

        return op == Revert && !vm.IsASnapshot ? OperationError.Of("REVERT_ONLY_ALLOWED_ON_SNAPSHOT") : null;
    }

    private static OperationError? Mobility(VmFacts vm, VmOperations op, bool strict)
    {
        if (SuspendLike.Contains(op) && strict && (vm.NoMigrate || vm.NestedVirt))
        {
            return OperationError.Of("VM_IS_IMMOBILE", vm.Ref);
        }

        return op == ChangingDynamicRange && vm.NestedVirt && strict ? OperationError.Of("VM_IS_USING_NESTED_VIRT", vm.Ref) : null;
    }

    private static OperationError? ControlDomain(VmFacts vm, VmOperations op)
    {
        if (op is ChangingVCPUs or Destroy && vm.IsDomainZero)
        {
            return OperationError.Of(ErrorCodes.OperationNotAllowed, "This operation is not allowed on dom0");
        }

        return vm.IsControlDomain && !ControlDomainAllowed.Contains(op)
            ? OperationError.Of(ErrorCodes.OperationNotAllowed, "This operation is not allowed on a control domain")
            : null;
    }

    /// <summary>
    /// xapi's guest feature check (an HVM guest must say it can do what the operation asks of it), where Corral needs
    /// the guest for less: QEMU migrates the whole machine, so a live migration needs nothing from the guest; a clean
    /// shutdown of a guest without Corral's agent presses the ACPI power button. A clean reboot does need the agent:
    /// without it Corral's reboot is a reset, so it is listed only while the agent reports.
    /// </summary>
    private static OperationError? GuestFeatures(VmFacts vm, VmOperations op, bool strict)
    {
        var implicitSupport = !vm.IsLive || vm.BootedPv || vm.HasPvDrivers;
        if (SuspendLike.Contains(op) && vm.IsLive)
        {
            if (vm.HasGuestMetrics && vm.GuestOther.TryGetValue("data-cant-suspend-reason", out var reason))
            {
                return OperationError.Of("VM_NON_SUSPENDABLE", vm.Ref, reason);
            }

            return op is Suspend or Checkpoint && !implicitSupport && strict && !vm.HasFeature("feature-suspend")
                ? OperationError.Of("VM_LACKS_FEATURE", vm.Ref)
                : null;
        }

        if (op == CleanReboot && vm.IsLive && strict && !(vm.HasGuestMetrics && vm.GuestAgentLive))
        {
            return OperationError.Of("VM_LACKS_FEATURE", vm.Ref);
        }

        if (implicitSupport || op == CleanShutdown)
        {
            return null;
        }

        return op == ChangingVCPUsLive && !vm.HasFeature("feature-vcpu-hotplug") ? OperationError.Of("VM_LACKS_FEATURE", vm.Ref) : null;
    }

    private static OperationError? Devices(VmFacts vm, VmOperations op)
    {
        // xapi refuses it always (its VSS support is gone); Corral quiesces through the QEMU guest agent when the
        // guest's agent is live and says it can freeze, as xapi once checked feature-quiesce.
        if (op == SnapshotWithQuiesce && !(vm.GuestAgentLive && vm.HasFeature("feature-quiesce")))
        {
            return OperationError.Of("VM_SNAPSHOT_WITH_QUIESCE_NOT_SUPPORTED", vm.Ref);
        }

        if ((op is Checkpoint or Snapshot or Suspend && vm.Vdis.Any(v => v.Reset)) || (op == PoolMigrate && vm.Vdis.Any(v => v.Reset && v.Caching)))
        {
            return OperationError.Of("VDI_ON_BOOT_MODE_INCOMPATIBLE_WITH_OPERATION");
        }

        if (SuspendLike.Contains(op) && vm.PassedThroughPcis > 0)
        {
            return OperationError.Of("VM_HAS_PCI_ATTACHED", vm.Ref);
        }

        // Corral has no vGPU that can be suspended with its VM: only a halted VM's migrate_send and a suspended VM's
        // checkpoint pass, as in xapi for a vGPU that is not suspendable.
        if (vm.Vgpus > 0 && SuspendLike.Contains(op) && !(op == MigrateSend && vm.PowerState == Halted) && !(op == Checkpoint && vm.PowerState == Suspended))
        {
            return OperationError.Of("VM_HAS_VGPU", vm.Ref);
        }

        return vm.Vusbs > 0 && op is Suspend or Snapshot or Checkpoint or MigrateSend or PoolMigrate ? OperationError.Of("VM_HAS_VUSBS", vm.Ref) : null;
    }

    private static OperationError? Membership(VmFacts vm, VmOperations op)
    {
        if (op == MakeIntoTemplate)
        {
            if (vm.Appliance is { } appliance)
            {
                return OperationError.Of("VM_IS_PART_OF_AN_APPLIANCE", vm.Ref, appliance);
            }

            if (vm.ProtectionPolicy is { } policy)
            {
                return OperationError.Of("VM_ASSIGNED_TO_PROTECTION_POLICY", vm.Ref, policy);
            }

            if (vm.SnapshotSchedule is { } schedule)
            {
                return OperationError.Of("VM_ASSIGNED_TO_SNAPSHOT_SCHEDULE", vm.Ref, schedule);
            }
        }

        if (op == QueryServices && !vm.IsSystemDomain)
        {
            return OperationError.Of("NOT_SYSTEM_DOMAIN", vm.Ref);
        }

        if (vm.RollingUpgrade && !RollingUpgradeAllowed.Contains(op))
        {
            return OperationError.Of(ErrorCodes.NotSupportedDuringUpgrade);
        }

        return op == CreateVtpm && vm.Vtpms > 0 ? OperationError.Of("VTPM_MAX_AMOUNT_REACHED", vm.Vtpms.ToString(System.Globalization.CultureInfo.InvariantCulture)) : null;
    }

    /// <summary>How xapi spells a VM operation inside its errors (mostly the wire name).</summary>
    public static string Display(VmOperations op) => op switch
    {
        AssertOperationValid => "assertoperationvalid",
        DataSourceOp => "data_sources_op",
        ChangingVCPUs or ChangingMemoryLimits or QueryServices or CreateTemplate => "(unknown operation)",
        _ => XenEnum.ToWire(XenEnumTypes.VmOperations, op),
    };
}
