using System.Text.Json;
using System.Text.Json.Serialization;

namespace Corral.Api.Operations;

/// <summary>
/// A unit of work one host must carry out (start this VM, create that volume), persisted in the pool database under
/// <c>/corral/ops/&lt;host-ref&gt;/&lt;id&gt;</c> before anything happens, and advanced through <see cref="Step"/> as it goes.
/// An agent that restarts finds its unfinished operations and resumes them from their last step; the task the caller
/// holds is finished by whoever finishes the operation.
/// </summary>
public sealed record HostOperation
{
    public required string Id { get; init; }

    /// <summary>What to do: one of <see cref="HostOperationKinds"/>.</summary>
    public required string Kind { get; init; }

    public required string HostRef { get; init; }

    public required string TaskRef { get; init; }

    /// <summary>The object acted on (a VM, an SR, a VDI).</summary>
    public required string Target { get; init; }

    public Dictionary<string, string> Arguments { get; init; } = [];

    /// <summary>The last step reached; each handler names its own steps.</summary>
    public string Step { get; init; } = "submitted";

    public DateTime CreatedUtc { get; init; } = DateTime.UtcNow;

    public string Key => HostOperationQueue.KeyOf(HostRef, Id);

    public string Argument(string name, string fallback = "") => Arguments.GetValueOrDefault(name, fallback);

    public string ToJson() => JsonSerializer.Serialize(this, Json.Options);

    public static HostOperation FromJson(string json) =>
        JsonSerializer.Deserialize<HostOperation>(json, Json.Options) ?? throw new JsonException("empty operation");

    private static class Json
    {
        public static readonly JsonSerializerOptions Options = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.Never };
    }
}

public static class HostOperationKinds
{
    public const string VmStart = "vm.start";
    public const string VmCleanShutdown = "vm.clean_shutdown";
    public const string VmHardShutdown = "vm.hard_shutdown";
    public const string VmCleanReboot = "vm.clean_reboot";
    public const string VmHardReboot = "vm.hard_reboot";
    public const string VmPause = "vm.pause";
    public const string VmUnpause = "vm.unpause";
    public const string VmChangeMedium = "vm.change_medium";
    public const string VbdPlug = "vbd.plug";
    public const string VbdUnplug = "vbd.unplug";
    public const string VifPlug = "vif.plug";
    public const string VifUnplug = "vif.unplug";
    public const string VmMigrateSend = "vm.migrate_send";
    public const string VmMigrateReceive = "vm.migrate_receive";
    public const string HostEvacuate = "host.evacuate";
    public const string HostRestoreEvacuatedVms = "host.restore_evacuated_vms";
    public const string HostShutdown = "host.shutdown";
    public const string HostReboot = "host.reboot";
    public const string HostRestartAgent = "host.restart_agent";
    public const string PifScan = "pif.scan";
    public const string PifIntroduce = "pif.introduce";
    public const string PifPlug = "pif.plug";
    public const string PifUnplug = "pif.unplug";
    public const string PifReconfigureIp = "pif.reconfigure_ip";

    // The pool's TLS on the host concerned: a new etcd certificate, or the files rewritten from the pool database.
    public const string HostRefreshServerCertificate = "host.refresh_server_certificate";
    public const string HostCertificateSync = "host.certificate_sync";
    public const string SrAttach = "sr.attach";
    public const string SrScan = "sr.scan";
    public const string SrProbe = "sr.probe";
    public const string SrDestroy = "sr.destroy";
    public const string PbdPlug = "pbd.plug";
    public const string PbdUnplug = "pbd.unplug";
    public const string VdiCreate = "vdi.create";
    public const string VdiDestroy = "vdi.destroy";
    public const string VdiResize = "vdi.resize";
    public const string VdiCopy = "vdi.copy";
    public const string VmSnapshot = "vm.snapshot";
    public const string VdiSnapshot = "vdi.snapshot";
    public const string VmRevert = "vm.revert";

    // Live resize, on the host running the VM: its vCPUs, its balloon's target, a disk's size.
    public const string VmSetVcpusLive = "vm.set_vcpus_live";
    public const string VmSetMemoryLive = "vm.set_memory_live";
    public const string VdiResizeOnline = "vdi.resize_online";
}
