using Corral.Api.Client;
using Corral.Cli.Api;
using Corral.Cli.Records;
using Corral.Model;

namespace Corral.Cli.Operations;

/// <summary>
/// xe's snapshot commands: vm-snapshot, vm-snapshot-with-quiesce, snapshot-revert, snapshot-clone, snapshot-copy,
/// snapshot-destroy, snapshot-uninstall, template-uninstall (a template, often a snapshot's clone) and vdi-snapshot
/// (snapshot-list and snapshot-param-* are the generic commands of the <c>snapshot</c> class).
/// </summary>
public static class SnapshotCommands
{
    private const CommandFlags VmStandard = CommandFlags.Standard | CommandFlags.VmSelectors;

    public static void Register(CommandRegistry r)
    {
        r.Add(new("vm-snapshot", ["new-name-label"], ["new-name-description", "ignore-vdi-uuids"],
            "Snapshot an existing VM, using storage-level fast disk snapshot operation where available.", VmStandard, SnapshotAsync));
        r.Add(new("vm-snapshot-with-quiesce", ["new-name-label"], ["new-name-description"],
            "Snapshot an existing VM with quiesce, using storage-level fast disk snapshot operation where available. "
            + "Corral freezes the guest's filesystems through the QEMU guest agent for the instant of the snapshot.",
            VmStandard, (c, ct) => SnapshotOfVmsAsync(c, ["new-name-label", "new-name-description"], (vm, name) => c.CallForStringAsync("VM.snapshot_with_quiesce", ct, vm, name), ct)));
        r.Add(new("snapshot-revert", [], ["uuid", "snapshot-uuid"], "Revert an existing VM to a previous checkpointed or snapshotted state.",
            CommandFlags.Standard, async (c, ct) => await c.CallAsync("VM.revert", ct, await SnapshotRefAsync(c, ct))));
        r.Add(new("snapshot-clone", ["new-name-label"], ["uuid", "snapshot-uuid", "new-name-description"],
            "Create a new template by cloning an existing snapshot, using storage-level fast disk clone operation where available.",
            CommandFlags.Standard, (c, ct) => FromSnapshotAsync(c, (s, name) => c.CallForStringAsync("VM.clone", ct, s, name), ct)));
        r.Add(new("snapshot-copy", ["new-name-label"], ["uuid", "snapshot-uuid", "new-name-description", "sr-uuid"],
            "Create a new template by copying an existing VM, but without using storage-level fast disk clone operation (even if this is available). The disk images of the copied VM are guaranteed to be 'full images' - i.e. not part of a CoW chain.",
            CommandFlags.Standard, async (c, ct) =>
            {
                var sr = c.Params.Get("sr-uuid") is { } uuid ? await c.CallForStringAsync("SR.get_by_uuid", ct, uuid) : OpaqueRef.Null;
                await FromSnapshotAsync(c, (s, name) => c.CallForStringAsync("VM.copy", ct, s, name, sr), ct);
            }));
        r.Add(new("snapshot-uninstall", [], ["uuid", "snapshot-uuid", "force"],
            "Uninstall a snapshot. This operation will destroy those VDIs that are marked RW and connected to this snapshot only. To simply destroy the VM record, use snapshot-destroy.",
            CommandFlags.Standard, async (c, ct) => await VmCommands.UninstallAsync(c, [await SnapshotRefAsync(c, ct)], ct)));
        r.Add(new("template-uninstall", ["template-uuid"], ["force"],
            "Uninstall a custom template. This operation will destroy those VDIs that are marked as 'owned' by this template",
            CommandFlags.Standard, async (c, ct) => await VmCommands.UninstallAsync(c, [await TemplateRefAsync(c, ct)], ct)));
        r.Add(new("snapshot-destroy", [], ["uuid", "snapshot-uuid"],
            "Destroy a snapshot. This leaves the storage associated with the snapshot intact. To delete storage too, use snapshot-uninstall.",
            CommandFlags.None, async (c, ct) =>
            {
                var snapshot = await SnapshotRefAsync(c, ct);
                if (await c.CallForStringAsync("VM.get_power_state", ct, snapshot) != "Halted")
                {
                    await c.CallAsync("VM.hard_shutdown", ct, snapshot);
                }

                await c.CallAsync("VM.destroy", ct, snapshot);
            }));
        r.Add(new("vdi-snapshot", ["uuid"], ["driver-params-"], "Snapshot a specified VDI.", CommandFlags.None, async (c, ct) =>
        {
            var vdi = await c.CallForStringAsync("VDI.get_by_uuid", ct, c.Params.Required("uuid"));
            var driverParams = c.Params.Map("driver-params").ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
            var snapshot = await c.CallForStringAsync("VDI.snapshot", ct, vdi, driverParams);
            c.Printer.List([await c.CallForStringAsync("VDI.get_uuid", ct, snapshot)]);
        }));
    }

    private static async Task SnapshotAsync(CommandContext c, CancellationToken ct)
    {
        var ignored = new List<object?>();
        foreach (var uuid in (c.Params.Get("ignore-vdi-uuids") ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            ignored.Add(await c.CallForStringAsync("VDI.get_by_uuid", ct, uuid));
        }

        await SnapshotOfVmsAsync(c, ["new-name-label", "new-name-description", "ignore-vdi-uuids"],
            (vm, name) => c.CallForStringAsync("VM.snapshot", ct, vm, name, ignored), ct);
    }

    /// <summary>xe's <c>vm_clone_aux</c> for snapshots: every VM selected (templates not), the description set on the first, the uuids printed.</summary>
    private static async Task SnapshotOfVmsAsync(CommandContext c, string[] parameters, Func<string, string, Task<string>> snapshot, CancellationToken ct)
    {
        var name = c.Params.Required("new-name-label");
        var snapshots = await Selection.ForVmsAsync(c, parameters, vm => snapshot(vm.Ref, name), ct);
        if (c.Params.Get("new-name-description") is { } description && snapshots.Count > 0)
        {
            await c.CallAsync("VM.set_name_description", ct, snapshots[0], description);
        }

        var uuids = new List<string>();
        foreach (var s in snapshots)
        {
            uuids.Add(await c.CallForStringAsync("VM.get_uuid", ct, s));
        }

        c.Printer.List(uuids);
    }

    /// <summary>xe's <c>snapshot_op</c>: a new template from the snapshot named, described if asked, its uuid printed.</summary>
    private static async Task FromSnapshotAsync(CommandContext c, Func<string, string, Task<string>> op, CancellationToken ct)
    {
        var name = c.Params.Required("new-name-label");
        var created = await op(await SnapshotRefAsync(c, ct), name);
        if (c.Params.Get("new-name-description") is { } description)
        {
            await c.CallAsync("VM.set_name_description", ct, created, description);
        }

        c.Printer.List([await c.CallForStringAsync("VM.get_uuid", ct, created)]);
    }

    /// <summary>xe's <c>get_templateVM_by_uuid</c>: template-uuid=, which must name a template.</summary>
    private static async Task<string> TemplateRefAsync(CommandContext c, CancellationToken ct)
    {
        var uuid = c.Params.Get("template-uuid")!;
        var template = await c.CallForStringAsync("VM.get_by_uuid", ct, uuid);
        return XenValue.AsBool(await c.CallAsync("VM.get_is_a_template", ct, template))
            ? template
            : throw new XeFailure($"This operation can only be performed on a VM template. {uuid} is not a VM template.");
    }

    /// <summary>xe's <c>get_snapshotVM_by_uuid</c>: snapshot-uuid= or uuid=, which must name a snapshot.</summary>
    private static async Task<string> SnapshotRefAsync(CommandContext c, CancellationToken ct)
    {
        var uuid = c.Params.Get("snapshot-uuid") ?? c.Params.Get("uuid") ?? throw new XeFailure("Required parameter not found: snapshot-uuid or uuid.");
        var snapshot = await c.CallForStringAsync("VM.get_by_uuid", ct, uuid);
        if (!XenValue.AsBool(await c.CallAsync("VM.get_is_a_snapshot", ct, snapshot)))
        {
            throw new XeFailure($"This operation can only be performed on a VM snapshot. {uuid} is not a VM snapshot.");
        }

        return snapshot;
    }
}
