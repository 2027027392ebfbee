using Corral.Api.Dispatch;
using Corral.Model;

namespace Corral.Api.AllowedOperations;

/// <summary>
/// Corral's rule on top of xapi's: an operation is listed in <c>allowed_operations</c> only if Corral really does it,
/// that is if one of the messages that carry it out (xapi's, as its message forwarding marks them) has a handler in the
/// dispatcher. A message without one answers NOT_IMPLEMENTED, so its operation never shows, and appears by itself the
/// day the message is implemented. An operation an HTTP handler carries counts when Corral serves the handler
/// (<see cref="ServedHttpHandlers"/>: <c>export</c>); others no message carries (internal steps such as
/// <c>reverting</c>) are never listed.
/// </summary>
public sealed class ImplementedOperations
{
    private readonly Func<string, bool> _isImplemented;
    private readonly bool _everything;

    public ImplementedOperations(Func<string, bool> isImplemented)
        : this(isImplemented, everything: false)
    {
    }

    private ImplementedOperations(Func<string, bool> isImplemented, bool everything)
    {
        _isImplemented = isImplemented;
        _everything = everything;
    }

    /// <summary>The dispatcher's messages decide.</summary>
    public static ImplementedOperations From(ApiRegistry registry) => new(name => ServedHttpHandlers.Contains(name) || registry.Find(name)?.IsImplemented == true);

    /// <summary>xapi's HTTP handlers Corral serves, by their RBAC names (the operations they carry show as allowed).</summary>
    public static readonly IReadOnlySet<string> ServedHttpHandlers = new HashSet<string>(StringComparer.Ordinal) { "http/get_export" };

    /// <summary>Every operation counts as done, those no message carries included: xapi's own lists.</summary>
    public static ImplementedOperations Everything { get; } = new(_ => true, everything: true);

    public bool Has(VmOperations op) => Any(VmMessages, op);

    public bool Has(VbdOperations op) => Any(VbdMessages, op);

    public bool Has(VifOperations op) => Any(VifMessages, op);

    public bool Has(VdiOperations op) => Any(VdiMessages, op);

    public bool Has(StorageOperations op) => Any(SrMessages, op);

    public bool Has(HostAllowedOperations op) => Any(HostMessages, op);

    public bool Has(PoolAllowedOperations op) => Any(PoolMessages, op);

    public bool Has(TaskAllowedOperations op) => Any(TaskMessages, op);

    private bool Any<TOp>(IReadOnlyDictionary<TOp, string[]> table, TOp op)
        where TOp : notnull => _everything || (table.TryGetValue(op, out var messages) && messages.Any(_isImplemented));

    /// <summary>The messages each VM operation marks the VM with (xapi's message_forwarding).</summary>
    public static readonly IReadOnlyDictionary<VmOperations, string[]> VmMessages = new Dictionary<VmOperations, string[]>
    {
        [VmOperations.Snapshot] = ["VM.snapshot"],
        [VmOperations.Clone] = ["VM.clone"],
        [VmOperations.Copy] = ["VM.copy"],
        [VmOperations.Revert] = ["VM.revert"],
        [VmOperations.Checkpoint] = ["VM.checkpoint"],
        [VmOperations.SnapshotWithQuiesce] = ["VM.snapshot_with_quiesce"],
        [VmOperations.Provision] = ["VM.provision"],
        [VmOperations.Start] = ["VM.start"],
        [VmOperations.StartOn] = ["VM.start_on"],
        [VmOperations.Pause] = ["VM.pause"],
        [VmOperations.Unpause] = ["VM.unpause"],
        [VmOperations.CleanShutdown] = ["VM.clean_shutdown"],
        [VmOperations.CleanReboot] = ["VM.clean_reboot"],
        [VmOperations.HardShutdown] = ["VM.hard_shutdown"],
        [VmOperations.PowerStateReset] = ["VM.power_state_reset"],
        [VmOperations.HardReboot] = ["VM.hard_reboot"],
        [VmOperations.Suspend] = ["VM.suspend"],
        [VmOperations.Resume] = ["VM.resume"],
        [VmOperations.ResumeOn] = ["VM.resume_on"],
        [VmOperations.PoolMigrate] = ["VM.pool_migrate"],
        [VmOperations.MigrateSend] = ["VM.migrate_send"],
        [VmOperations.GetBootRecord] = ["VM.get_boot_record"],
        [VmOperations.SendSysrq] = ["VM.send_sysrq"],
        [VmOperations.SendTrigger] = ["VM.send_trigger"],
        [VmOperations.QueryServices] = ["VM.query_services"],
        [VmOperations.Shutdown] = ["VM.shutdown"],
        [VmOperations.CallPlugin] = ["VM.call_plugin"],
        [VmOperations.ChangingMemoryLive] = ["VM.set_memory_target_live"],
        [VmOperations.AwaitingMemoryLive] = ["VM.wait_memory_target_live"],
        [VmOperations.ChangingDynamicRange] = ["VM.set_memory_dynamic_range", "VM.set_memory_dynamic_max", "VM.set_memory_dynamic_min"],
        [VmOperations.ChangingStaticRange] = ["VM.set_memory_static_range", "VM.set_memory_static_max", "VM.set_memory_static_min"],
        [VmOperations.ChangingMemoryLimits] = ["VM.set_memory_limits", "VM.set_memory"],
        [VmOperations.ChangingShadowMemory] = ["VM.set_HVM_shadow_multiplier"],
        [VmOperations.ChangingShadowMemoryLive] = ["VM.set_shadow_multiplier_live"],
        [VmOperations.ChangingVCPUs] = ["VM.set_VCPUs_max"],
        [VmOperations.ChangingVCPUsLive] = ["VM.set_VCPUs_number_live", "VM.add_to_VCPUs_params_live"],
        [VmOperations.ChangingNVRAM] = ["VM.set_NVRAM", "VM.add_to_NVRAM", "VM.remove_from_NVRAM"],
        [VmOperations.AssertOperationValid] = ["VM.assert_operation_valid"],
        [VmOperations.DataSourceOp] = ["VM.get_data_sources", "VM.record_data_source", "VM.forget_data_source_archives"],
        [VmOperations.UpdateAllowedOperations] = ["VM.update_allowed_operations"],
        [VmOperations.MakeIntoTemplate] = ["VM.set_is_a_template"],
        [VmOperations.Destroy] = ["VM.destroy"],
        [VmOperations.CreateVtpm] = ["VTPM.create"],
        // export is xapi's HTTP handler /export (Http.XvaEndpoints); metadata_export and import (/export_metadata, and
        // the mark /import puts on the VMs it is creating) are not done; create_template, reverting and csvm are
        // internal steps of other calls.
        [VmOperations.Export] = ["http/get_export"],
    };

    /// <summary>
    /// VBD operations. <c>attach</c> is the mark VM.start, start_on and the reboots put on every disk of the VM: Corral
    /// attaches them when it starts the VM.
    /// </summary>
    public static readonly IReadOnlyDictionary<VbdOperations, string[]> VbdMessages = new Dictionary<VbdOperations, string[]>
    {
        [VbdOperations.Attach] = ["VM.start", "VM.start_on"],
        [VbdOperations.Eject] = ["VBD.eject"],
        [VbdOperations.Insert] = ["VBD.insert"],
        [VbdOperations.Plug] = ["VBD.plug"],
        [VbdOperations.Unplug] = ["VBD.unplug"],
        [VbdOperations.UnplugForce] = ["VBD.unplug_force"],
        // pause and unpause are xapi-internal messages (storage migration), not in the datamodel.
    };

    public static readonly IReadOnlyDictionary<VifOperations, string[]> VifMessages = new Dictionary<VifOperations, string[]>
    {
        [VifOperations.Attach] = ["VM.start", "VM.start_on"],
        [VifOperations.Plug] = ["VIF.plug"],
        [VifOperations.Unplug] = ["VIF.unplug", "VIF.unplug_force"],
    };

    public static readonly IReadOnlyDictionary<VdiOperations, string[]> VdiMessages = new Dictionary<VdiOperations, string[]>
    {
        [VdiOperations.Clone] = ["VDI.clone"],
        [VdiOperations.Copy] = ["VDI.copy"],
        [VdiOperations.Resize] = ["VDI.resize"],
        [VdiOperations.ResizeOnline] = ["VDI.resize_online"],
        [VdiOperations.Snapshot] = ["VDI.snapshot"],
        [VdiOperations.Mirror] = ["VDI.pool_migrate"],
        [VdiOperations.Destroy] = ["VDI.destroy"],
        [VdiOperations.Forget] = ["VDI.forget"],
        [VdiOperations.Update] = ["VDI.update"],
        [VdiOperations.EnableCbt] = ["VDI.enable_cbt"],
        [VdiOperations.DisableCbt] = ["VDI.disable_cbt"],
        [VdiOperations.DataDestroy] = ["VDI.data_destroy"],
        [VdiOperations.ListChangedBlocks] = ["VDI.list_changed_blocks"],
        [VdiOperations.SetOnBoot] = ["VDI.set_on_boot"],
        // force_unlock, generate_config and blocked are xapi-internal (not in the datamodel).
    };

    public static readonly IReadOnlyDictionary<StorageOperations, string[]> SrMessages = new Dictionary<StorageOperations, string[]>
    {
        [StorageOperations.Scan] = ["SR.scan"],
        [StorageOperations.Destroy] = ["SR.destroy"],
        [StorageOperations.Forget] = ["SR.forget"],
        [StorageOperations.Plug] = ["PBD.plug"],
        [StorageOperations.Unplug] = ["PBD.unplug"],
        [StorageOperations.Update] = ["SR.update"],
        [StorageOperations.VdiCreate] = ["VDI.create"],
        [StorageOperations.VdiIntroduce] = ["VDI.introduce"],
        [StorageOperations.VdiDestroy] = ["VDI.destroy"],
        [StorageOperations.VdiResize] = ["VDI.resize", "VDI.resize_online"],
        [StorageOperations.VdiClone] = ["VDI.clone"],
        [StorageOperations.VdiSnapshot] = ["VDI.snapshot"],
        [StorageOperations.VdiMirror] = ["VDI.pool_migrate"],
        [StorageOperations.VdiEnableCbt] = ["VDI.enable_cbt"],
        [StorageOperations.VdiDisableCbt] = ["VDI.disable_cbt"],
        [StorageOperations.VdiDataDestroy] = ["VDI.data_destroy"],
        [StorageOperations.VdiListChangedBlocks] = ["VDI.list_changed_blocks"],
        [StorageOperations.VdiSetOnBoot] = ["VDI.set_on_boot"],
        [StorageOperations.PbdCreate] = ["PBD.create"],
        [StorageOperations.PbdDestroy] = ["PBD.destroy"],
    };

    public static readonly IReadOnlyDictionary<HostAllowedOperations, string[]> HostMessages = new Dictionary<HostAllowedOperations, string[]>
    {
        [HostAllowedOperations.Provision] = ["VM.provision"],
        [HostAllowedOperations.Evacuate] = ["host.evacuate"],
        [HostAllowedOperations.Shutdown] = ["host.shutdown"],
        [HostAllowedOperations.Reboot] = ["host.reboot"],
        [HostAllowedOperations.PowerOn] = ["host.power_on"],
        [HostAllowedOperations.VmStart] = ["VM.start", "VM.start_on"],
        [HostAllowedOperations.VmResume] = ["VM.resume", "VM.resume_on"],
        [HostAllowedOperations.VmMigrate] = ["VM.pool_migrate", "VM.migrate_send"],
        [HostAllowedOperations.ApplyUpdates] = ["host.apply_updates"],
        [HostAllowedOperations.Enable] = ["host.enable"],
    };

    public static readonly IReadOnlyDictionary<PoolAllowedOperations, string[]> PoolMessages = new Dictionary<PoolAllowedOperations, string[]>
    {
        [PoolAllowedOperations.HaEnable] = ["pool.enable_ha"],
        [PoolAllowedOperations.HaDisable] = ["pool.disable_ha"],
        [PoolAllowedOperations.ClusterCreate] = ["Cluster.create"],
        [PoolAllowedOperations.DesignateNewMaster] = ["pool.designate_new_master"],
        [PoolAllowedOperations.ConfigureRepositories] = ["pool.set_repositories", "pool.add_repository", "pool.remove_repository"],
        [PoolAllowedOperations.SyncUpdates] = ["pool.sync_updates"],
        [PoolAllowedOperations.ApplyUpdates] = ["host.apply_updates"],
        [PoolAllowedOperations.TlsVerificationEnable] = ["pool.enable_tls_verification"],
        [PoolAllowedOperations.CertRefresh] = ["host.refresh_server_certificate"],
        [PoolAllowedOperations.Eject] = ["pool.eject"],
        // get_updates is xapi's HTTP handler /updates; the certificate exchanges of a join and
        // copy_primary_host_certs are xapi-internal calls Corral's pool.join does not make.
    };

    public static readonly IReadOnlyDictionary<TaskAllowedOperations, string[]> TaskMessages = new Dictionary<TaskAllowedOperations, string[]>
    {
        [TaskAllowedOperations.Cancel] = ["task.cancel"],
        // destroy is never an allowed operation in xapi (task.destroy of an unfinished task only records it).
    };
}
