using Corral.Model;

namespace Corral.Api.AllowedOperations;

/// <summary>
/// Everything xapi's VM rules read about a VM, already derived from its records (the VM, its metrics and guest
/// metrics, the VDIs of its disks, the pool): what <see cref="VmOperationRules"/> decides from.
/// </summary>
public sealed record VmFacts
{
    public required string Ref { get; init; }

    public VmPowerState PowerState { get; init; } = VmPowerState.Halted;

    public bool IsATemplate { get; init; }

    public bool IsASnapshot { get; init; }

    /// <summary><c>is_default_template</c>, or <c>other_config:default_template</c> true.</summary>
    public bool IsDefaultTemplate { get; init; }

    public bool IsControlDomain { get; init; }

    /// <summary>The control domain of the host it runs on (dom0).</summary>
    public bool IsDomainZero { get; init; }

    public InProgress<VmOperations> CurrentOperations { get; init; } = InProgress.None<VmOperations>();

    /// <summary><c>blocked_operations</c>: operation to the message a client shows.</summary>
    public IReadOnlyDictionary<VmOperations, string> BlockedOperations { get; init; } = new Dictionary<VmOperations, string>();

    /// <summary><c>VM_metrics.current_domain_type</c>; null without a metrics record.</summary>
    public DomainType? CurrentDomainType { get; init; }

    public bool HasGuestMetrics { get; init; }

    /// <summary><c>VM_guest_metrics.other</c>: the guest's feature flags.</summary>
    public IReadOnlyDictionary<string, string> GuestOther { get; init; } = new Dictionary<string, string>();

    /// <summary><c>PV_drivers_version</c> holds a well-formed version (xapi's "has PV drivers").</summary>
    public bool HasPvDrivers { get; init; }

    /// <summary><c>VM_guest_metrics.live</c>: Corral's guest agent has reported since the VM last started.</summary>
    public bool GuestAgentLive { get; init; }

    public bool NoMigrate { get; init; }

    public bool NestedVirt { get; init; }

    /// <summary>The VDIs of the VM's disks: <c>sm_config:on_boot=reset</c> and <c>sm_config:caching</c>.</summary>
    public IReadOnlyList<(bool Reset, bool Caching)> Vdis { get; init; } = [];

    /// <summary>Passed-through PCI devices that are not the device of one of its NVIDIA SR-IOV vGPUs.</summary>
    public int PassedThroughPcis { get; init; }

    public int Vgpus { get; init; }

    public int Vusbs { get; init; }

    public int Vtpms { get; init; }

    /// <summary>The VM_appliance it belongs to, if that reference is valid.</summary>
    public string? Appliance { get; init; }

    public string? ProtectionPolicy { get; init; }

    public string? SnapshotSchedule { get; init; }

    /// <summary><c>other_config:is_system_domain</c> true.</summary>
    public bool IsSystemDomain { get; init; }

    /// <summary><c>pool.other_config:allow_clone_suspended_vm</c> = "true".</summary>
    public bool AllowCloneSuspended { get; init; }

    /// <summary><c>pool.other_config</c> has <c>rolling_upgrade_in_progress</c>.</summary>
    public bool RollingUpgrade { get; init; }

    public bool IsLive => PowerState is VmPowerState.Running or VmPowerState.Paused;

    /// <summary>xapi's "definitely booted PV": the metrics say pv, pv_in_pvh or pvh.</summary>
    public bool BootedPv => CurrentDomainType is DomainType.Pv or DomainType.PvInPvh or DomainType.Pvh;

    public bool HasFeature(string feature) => HasGuestMetrics && GuestOther.TryGetValue(feature, out var v) && v == "1";
}
