using System.Xml.Linq;
using Corral.Cli.Api;
using Corral.Api.Client;
using Corral.Cli.Records;
using Corral.Model;

namespace Corral.Cli.Operations;

/// <summary>VM lifecycle: install, start, shutdown, reboot, pause, unpause, reset-powerstate, uninstall, destroy, clone, copy.</summary>
public static class VmCommands
{
    private const CommandFlags VmStandard = CommandFlags.Standard | CommandFlags.VmSelectors;

    public const string NoForceMessage = "This operation is dangerous and may cause data loss. This operation must be forced (use --force).";

    public static void Register(CommandRegistry r)
    {
        r.Add(new("vm-install", ["new-name-label"], ["sr-name-label", "sr-uuid", "template", "copy-bios-strings-from"],
            "Install a new VM from a template. The template parameter can match either the template name or the uuid.",
            CommandFlags.Standard, InstallAsync));
        r.Add(new("vm-start", [], ["force", "on", "paused"],
            "Start the selected VM(s). Where pooling is enabled, the host on which to start can be specified with the 'on' parameter that takes a uuid. The optional parameter '--force' will bypass any hardware-compatibility warnings.",
            VmStandard, StartAsync));
        r.Add(new("vm-shutdown", [], ["force"],
            "Shutdown the selected VM(s). The optional argument --force will forcibly shut down the VM.", VmStandard, ShutdownAsync));
        r.Add(new("vm-reboot", [], ["force"], "Reboot the selected VM(s).", VmStandard, (c, ct) =>
            Selection.ForVmsAsync(c, [], vm => c.CallAsync(c.Params.Bool("force") ? "VM.hard_reboot" : "VM.clean_reboot", ct, vm.Ref), ct)));
        r.Add(new("vm-pause", [], [],
            "Pause a running VM. Note this operation does not free the associated memory (see 'vm-suspend').", VmStandard, (c, ct) =>
                Selection.ForVmsAsync(c, [], vm => c.CallAsync("VM.pause", ct, vm.Ref), ct)));
        r.Add(new("vm-unpause", [], [], "Unpause a paused VM.", VmStandard, (c, ct) =>
            Selection.ForVmsAsync(c, [], vm => c.CallAsync("VM.unpause", ct, vm.Ref), ct)));
        r.Add(new("vm-reset-powerstate", [], ["force"],
            "Force the VM powerstate to halted in the management toolstack database only. This command is used to recover a VM that is marked as 'running', but is known to be on a dead slave host that will not recover. This is a potentially dangerous operation: you must ensure that the VM you are forcing to 'halted' is definitely not running anywhere.",
            VmStandard, (c, ct) =>
            {
                if (!c.Params.Bool("force"))
                {
                    throw new XeFailure(NoForceMessage);
                }

                return Selection.ForVmsAsync(c, [], vm => c.CallAsync("VM.power_state_reset", ct, vm.Ref), ct);
            }));
        r.Add(new("vm-migrate", [],
            ["host", "host-uuid", "live", "force", "copy", "remote-master", "remote-username", "remote-password", "remote-network", "vif:", "vdi:",
                "downtime-ms", "bandwidth"],
            "Migrate the selected VM(s). The parameter '--live' will migrate the VM without shutting it down. The 'host' parameter matches can be either the name or the uuid of the host. "
            + "The vif and vdi mapping parameters take the form 'vif:<source vif uuid>=<dest network uuid>' and 'vdi:<source vdi uuid>=<dest sr uuid>': "
            + "a mapped disk is copied live to the SR named (a VM on a host's local SR moves with its disks). "
            + "Corral migrates between the hosts of one pool: remote-master may only name a host of this pool. "
            + "'downtime-ms' (the longest pause allowed at the switchover) and 'bandwidth' (bytes per second) tune the migration.",
            VmStandard, MigrateAsync));
        r.Add(new("vm-uninstall", [], ["force"],
            "Uninstall a VM. This operation will destroy those VDIs that are marked RW and connected to this VM only. To simply destroy the VM record, use vm-destroy.",
            VmStandard, UninstallAsync));
        r.Add(new("vm-destroy", ["uuid"], [],
            "Destroy a VM. This leaves the storage associated with the VM intact. To delete storage too, use vm-uninstall.",
            CommandFlags.None, DestroyAsync));
        r.Add(new("vm-clone", ["new-name-label"], ["new-name-description"],
            "Clone an existing VM, using storage-level fast disk clone operation where available.", VmStandard, CloneAsync));
        r.Add(new("vm-copy", ["new-name-label"], ["new-name-description", "sr-uuid"],
            "Copy an existing VM, but without using storage-level fast disk clone operation (even if this is available). The disk images of the copied VM are guaranteed to be 'full images' - i.e. not part of a CoW chain.",
            VmStandard, CopyAsync));
    }

    private static Task StartAsync(CommandContext c, CancellationToken ct)
    {
        var force = c.Params.Bool("force");
        var paused = c.Params.Bool("paused");
        return Selection.ForVmsAsync(c, ["on", "paused", "progress"], async vm =>
        {
            if (c.Params.Get("on") is { } on)
            {
                var host = await Selection.HostByNameOrIdAsync(c, on, ct);
                await TaskWaiter.CallAsync(c, "VM.start_on", ct, vm.Ref, host.Ref, paused, force);
            }
            else
            {
                await TaskWaiter.CallAsync(c, "VM.start", ct, vm.Ref, paused, force);
            }
        }, ct, includeControlDomains: true);
    }

    private static readonly string[] MigrateParams =
        ["host", "host-uuid", "live", "copy", "remote-master", "remote-username", "remote-password", "remote-network", "vif", "vdi", "downtime-ms", "bandwidth", "progress"];

    /// <summary>
    /// xe's <c>vm-migrate</c>: <c>VM.pool_migrate</c> to the host named by <c>host=</c> (name or uuid) or <c>host-uuid=</c>,
    /// or, as xe does when disks or VIFs are mapped (<c>vdi:&lt;vdi uuid&gt;=&lt;sr uuid&gt;</c>), a storage migration:
    /// <c>host.migrate_receive</c> then <c>VM.migrate_send</c>. Corral always migrates live; <c>downtime-ms=</c> and
    /// <c>bandwidth=</c> (bytes/s) tune it.
    /// </summary>
    private static async Task MigrateAsync(CommandContext c, CancellationToken ct)
    {
        if (c.Params.Bool("copy"))
        {
            throw new XeFailure("copy=true copies a VM to another pool; Corral migrates within one pool (use vm-copy to copy a VM)");
        }

        var target = c.Params.Get("host") ?? c.Params.Get("host-uuid") ?? throw new XeUsageError("", "No destination host specified");
        var host = await Selection.HostByNameOrIdAsync(c, target, ct);
        var options = new Dictionary<string, object?>();
        foreach (var (param, option) in new[] { ("downtime-ms", "downtime_ms"), ("bandwidth", "bandwidth") })
        {
            if (c.Params.Get(param) is { } value)
            {
                options[option] = value;
            }
        }

        var vdiParams = c.Params.Map("vdi");
        var vifParams = c.Params.Map("vif");
        var remoteMaster = c.Params.Get("remote-master");
        if (remoteMaster is null && vdiParams.Count == 0 && vifParams.Count == 0)
        {
            options["live"] = "true";
            await Selection.ForVmsAsync(c, MigrateParams, vm => TaskWaiter.CallAsync(c, "VM.pool_migrate", ct, vm.Ref, host.Ref, options), ct);
            return;
        }

        if (remoteMaster is not null)
        {
            var hosts = await c.Cache.AllAsync("host", ct);
            if (!hosts.Any(h => h.Str("address") == remoteMaster || h.Str("hostname") == remoteMaster || h.Str("name_label") == remoteMaster))
            {
                throw new XeFailure($"{remoteMaster} is not a host of this pool: Corral migrates between the hosts of one pool (join the host to the pool first)");
            }
        }

        var vdiMap = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (vdiUuid, srUuid) in vdiParams)
        {
            vdiMap[await c.CallForStringAsync("VDI.get_by_uuid", ct, vdiUuid)] =
                await c.CallForStringAsync("SR.get_by_uuid", ct, srUuid);
        }

        var vifMap = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (vifUuid, networkUuid) in vifParams)
        {
            vifMap[await c.CallForStringAsync("VIF.get_by_uuid", ct, vifUuid)] =
                await c.CallForStringAsync("network.get_by_uuid", ct, networkUuid);
        }

        var network = c.Params.Get("remote-network") is { } networkParam
            ? await c.CallForStringAsync("network.get_by_uuid", ct, networkParam)
            : OpaqueRef.Null;
        var dest = await c.CallAsync("host.migrate_receive", ct, host.Ref, network, new Dictionary<string, object?>());
        await Selection.ForVmsAsync(c, MigrateParams,
            vm => TaskWaiter.CallAsync(c, "VM.migrate_send", ct, vm.Ref, dest, true, vdiMap, vifMap, options), ct, multiple: false);
    }

    private static Task ShutdownAsync(CommandContext c, CancellationToken ct)
    {
        var method = c.Params.Bool("force") ? "VM.hard_shutdown" : "VM.clean_shutdown";
        return Selection.ForVmsAsync(c, ["progress"], vm => TaskWaiter.CallAsync(c, method, ct, vm.Ref), ct);
    }

    private static async Task DestroyAsync(CommandContext c, CancellationToken ct)
    {
        var vm = await c.CallForStringAsync("VM.get_by_uuid", ct, c.Params.Required("uuid"));
        if (XenValue.AsBool(await c.CallAsync("VM.get_is_control_domain", ct, vm)))
        {
            throw new XenApiException(ErrorCodes.OperationNotAllowed, "You cannot destroy a control domain via the CLI");
        }

        await c.CallAsync("VM.destroy", ct, vm);
    }

    private static async Task CloneAsync(CommandContext c, CancellationToken ct)
    {
        var name = c.Params.Required("new-name-label");
        var vms = await Selection.ForVmsAsync(c, ["new-name-label", "new-name-description", "ignore-vdi-uuids"],
            vm => c.CallForStringAsync("VM.clone", ct, vm.Ref, name), ct, includeTemplates: true);
        await FinishCopiesAsync(c, vms, ct);
    }

    private static async Task CopyAsync(CommandContext c, CancellationToken ct)
    {
        var name = c.Params.Required("new-name-label");
        var sr = c.Params.Get("sr-uuid") is { } uuid ? await c.CallForStringAsync("SR.get_by_uuid", ct, uuid) : OpaqueRef.Null;
        var vms = await Selection.ForVmsAsync(c, ["new-name-label", "sr-uuid", "new-name-description"],
            vm => c.CallForStringAsync("VM.copy", ct, vm.Ref, name, sr), ct, multiple: false, includeTemplates: true);
        await FinishCopiesAsync(c, vms, ct);
    }

    private static async Task FinishCopiesAsync(CommandContext c, IReadOnlyList<string> vms, CancellationToken ct)
    {
        if (c.Params.Get("new-name-description") is { } description && vms.Count > 0)
        {
            await c.CallAsync("VM.set_name_description", ct, vms[0], description);
        }

        var uuids = new List<string>();
        foreach (var vm in vms)
        {
            uuids.Add(await c.CallForStringAsync("VM.get_uuid", ct, vm));
        }

        c.Printer.List(uuids);
    }

    /// <summary>
    /// xe's vm-install: find the template (template-uuid, template-name-label, template-name, or template= by uuid
    /// then by name), copy it to the SR given (VM.copy) or clone it (VM.clone), describe it, point the provisioning
    /// disks at the SR, provision it, print its uuid. On a failure after the copy, the new VM is destroyed.
    /// </summary>
    private static async Task InstallAsync(CommandContext c, CancellationToken ct)
    {
        var template = await FindTemplateAsync(c, ct);
        if (!XenValue.AsBool(await c.CallAsync("VM.get_is_a_template", ct, template)))
        {
            throw new XeFailure("Can only install from templates");
        }

        var name = c.Params.Required("new-name-label");
        var sr = await InstallSrAsync(c, template, ct);
        var suspendSr = sr is not null && !OpaqueRef.IsNull(sr)
            ? sr
            : await c.CallForStringAsync("VM.get_suspend_SR", ct, template);
        var srUuid = await ProvisioningSrUuidAsync(c, template, sr, ct);
        var vm = sr is not null && !OpaqueRef.IsNull(sr)
            ? await c.CallForStringAsync("VM.copy", ct, template, name, sr)
            : await c.CallForStringAsync("VM.clone", ct, template, name);
        try
        {
            await c.CallAsync("VM.set_name_description", ct, vm, "Installed via xe CLI");
            await c.CallAsync("VM.set_suspend_SR", ct, vm, suspendSr);
            await RewriteProvisioningAsync(c, vm, srUuid, ct);
            await c.CallAsync("VM.provision", ct, vm);
            // xapi's VM.provision itself turns the copy into a VM; make sure of it where a server leaves that to us.
            if (XenValue.AsBool(await c.CallAsync("VM.get_is_a_template", ct, vm)))
            {
                await c.CallAsync("VM.set_is_a_template", ct, vm, false);
            }

            if (c.Params.Get("copy-bios-strings-from") is { } hostUuid)
            {
                var host = await c.CallForStringAsync("host.get_by_uuid", ct, hostUuid);
                await c.CallAsync("VM.copy_bios_strings", ct, vm, host);
            }

            c.Printer.Line(await c.CallForStringAsync("VM.get_uuid", ct, vm));
        }
        catch (Exception ex) when (ex is XenApiException or CliException)
        {
            try
            {
                await c.CallAsync("VM.destroy", CancellationToken.None, vm);
            }
            catch (XenApiException)
            {
                // The install's own error is the one to report.
            }

            throw;
        }
    }

    private static async Task<string> FindTemplateAsync(CommandContext c, CancellationToken ct)
    {
        if (c.Params.Get("template-uuid") is { } templateUuid)
        {
            try
            {
                return await c.CallForStringAsync("VM.get_by_uuid", ct, templateUuid);
            }
            catch (XenApiException)
            {
                throw new XeFailure("Cannot find template");
            }
        }

        if ((c.Params.Get("template-name-label") ?? c.Params.Get("template-name")) is { } templateName)
        {
            return await TemplateByNameAsync(c, templateName, ct);
        }

        if (c.Params.Get("template") is { } template)
        {
            try
            {
                return await c.CallForStringAsync("VM.get_by_uuid", ct, template);
            }
            catch (XenApiException ex) when (ex.Code is ErrorCodes.UuidInvalid or ErrorCodes.HandleInvalid)
            {
                return await TemplateByNameAsync(c, template, ct);
            }
        }

        throw new XeFailure("Template must be specified by parameter 'template-uuid', 'template-name', 'template-name-label' or 'template'");
    }

    private static async Task<string> TemplateByNameAsync(CommandContext c, string name, CancellationToken ct)
    {
        var all = await c.Cache.AllAsync("VM", ct);
        var templates = await c.Records.FilterAsync(XeClasses.Get("vm"), all,
            [new("name-label", name), new("is-a-template", "true"), new("is-control-domain", "false")], ct);
        return templates.Count switch
        {
            0 => throw new XeFailure("No templates matched"),
            1 => templates[0].Ref,
            _ => throw new XeFailure("More than one matching template found"),
        };
    }

    /// <summary>The SR of an install: sr-uuid and/or sr-name-label (which must agree); null when none is given.</summary>
    private static async Task<string?> InstallSrAsync(CommandContext c, string template, CancellationToken ct)
    {
        string? sr = null;
        if (XenValue.AsBool(await c.CallAsync("VM.get_is_a_snapshot", ct, template)))
        {
            if (c.Params.Has("sr-name-label") || c.Params.Has("sr-uuid"))
            {
                throw new XeFailure("Do not use the sr-name-label or sr-uuid argument when installing from a snapshot. By default, it will install each new disk on the same SR as the corresponding snapshot disks.");
            }

            sr = OpaqueRef.Null;
        }
        else if (c.Params.Get("sr-uuid") is { } uuid)
        {
            sr = await c.CallForStringAsync("SR.get_by_uuid", ct, uuid);
        }

        if (c.Params.Get("sr-name-label") is { } label)
        {
            var named = XenValue.AsStrings(await c.CallAsync("SR.get_by_name_label", ct, label));
            if (named.Count == 0)
            {
                throw new XeFailure("No SR with that name-label found");
            }

            if (sr is not null)
            {
                return named.Contains(sr) ? sr : throw new XeFailure("SR specified via sr-uuid doesn't have the name specified via sr-name-label");
            }

            return named.Count == 1 ? named[0] : throw new XeFailure("Multiple SRs with that name-label found");
        }

        return sr;
    }

    /// <summary>The SR uuid the provisioning disks go to: the install's SR, else the pool's default SR.</summary>
    private static async Task<string> ProvisioningSrUuidAsync(CommandContext c, string template, string? sr, CancellationToken ct)
    {
        if (sr is not null && !OpaqueRef.IsNull(sr))
        {
            return await c.CallForStringAsync("SR.get_uuid", ct, sr);
        }

        if (await DefaultSrUuidAsync(c, ct) is { } uuid)
        {
            return uuid;
        }

        var otherConfig = XenValue.AsMap(await c.CallAsync("VM.get_other_config", ct, template));
        return otherConfig.Any(kv => kv.Key == "disks")
            ? throw new XeFailure("Failed to find a valid default SR for the Pool. Please provide an sr-name-label or sr-uuid parameter.")
            : "";
    }

    /// <summary>xe's <c>get_default_sr_uuid</c>: the uuid of the pool's default SR, or null.</summary>
    public static async Task<string?> DefaultSrUuidAsync(CommandContext c, CancellationToken ct)
    {
        var pools = XenValue.AsStrings(await c.CallAsync("pool.get_all", ct));
        if (pools.Count == 0)
        {
            return null;
        }

        var sr = await c.CallForStringAsync("pool.get_default_SR", ct, pools[0]);
        try
        {
            return await c.CallForStringAsync("SR.get_uuid", ct, sr);
        }
        catch (XenApiException)
        {
            return null;
        }
    }

    /// <summary>xe's <c>rewrite_provisioning_xml</c>: the template's other-config:disks, each disk's sr set to the SR.</summary>
    private static async Task RewriteProvisioningAsync(CommandContext c, string vm, string srUuid, CancellationToken ct)
    {
        var otherConfig = XenValue.AsMap(await c.CallAsync("VM.get_other_config", ct, vm));
        var disks = otherConfig.FirstOrDefault(kv => kv.Key == "disks");
        if (disks.Key is null)
        {
            return;
        }

        var rewritten = RewriteDisksXml(disks.Value, srUuid);
        await c.CallAsync("VM.remove_from_other_config", ct, vm, "disks");
        await c.CallAsync("VM.add_to_other_config", ct, vm, "disks", rewritten);
    }

    /// <summary>The provisioning XML (<c>&lt;provision&gt;&lt;disk sr="..."/&gt;...</c>) with every disk on the given SR.</summary>
    public static string RewriteDisksXml(string xml, string srUuid)
    {
        var document = XElement.Parse(xml);
        if (document.Name.LocalName == "provision")
        {
            foreach (var disk in document.Elements().Where(e => e.Name.LocalName == "disk" && !e.HasElements))
            {
                if (disk.Attribute("sr") is { } attribute)
                {
                    attribute.Value = srUuid;
                }
            }
        }

        return document.ToString(SaveOptions.DisableFormatting);
    }

    /// <summary>
    /// xe's vm-uninstall: lists the VM and the disks it owns (VBDs whose other-config has an <c>owner</c> key, and the
    /// suspend image), asks for <c>yes</c> unless --force, then shuts the VM down hard if needed and destroys them.
    /// </summary>
    private static async Task UninstallAsync(CommandContext c, CancellationToken ct)
    {
        var vms = (await Selection.ForVmsAsync(c, [], vm => Task.FromResult(vm.Ref), ct)).ToList();
        foreach (var vm in vms.ToList())
        {
            vms.AddRange(XenValue.AsStrings(await c.CallAsync("VM.get_snapshots", ct, vm)));
        }

        await UninstallAsync(c, vms, ct);
    }

    /// <summary>xe's <c>vm_uninstall_common</c>: the VMs (or snapshots) and the disks they own, after confirmation.</summary>
    public static async Task UninstallAsync(CommandContext c, IReadOnlyList<string> vms, CancellationToken ct)
    {
        var lines = new List<string>();
        var plans = new List<(string Vm, List<string> Vdis, string? SuspendVdi)>();
        foreach (var vm in vms)
        {
            var vbds = XenValue.AsStrings(await c.CallAsync("VM.get_VBDs", ct, vm));
            var vdis = new List<string>();
            foreach (var vbd in vbds)
            {
                try
                {
                    var otherConfig = XenValue.AsMap(await c.CallAsync("VBD.get_other_config", ct, vbd));
                    var vdi = await c.CallForStringAsync("VBD.get_VDI", ct, vbd);
                    await c.CallAsync("VDI.get_uuid", ct, vdi);
                    if (otherConfig.Any(kv => kv.Key == "owner"))
                    {
                        vdis.Add(vdi);
                    }
                }
                catch (XenApiException)
                {
                    // An empty drive or a disk already gone: nothing of it to destroy.
                }
            }

            string? suspend = null;
            try
            {
                var s = await c.CallForStringAsync("VM.get_suspend_VDI", ct, vm);
                await c.CallAsync("VDI.get_uuid", ct, s);
                suspend = s;
            }
            catch (XenApiException)
            {
                suspend = null;
            }

            var record = XenValue.AsRecord(await c.CallAsync("VM.get_record", ct, vm));
            lines.Add($"VM : {XenValue.AsString(record.GetValueOrDefault("uuid"))} ({XenValue.AsString(record.GetValueOrDefault("name_label"))})");
            foreach (var vdi in suspend is null ? vdis : [.. vdis, suspend])
            {
                var r = XenValue.AsRecord(await c.CallAsync("VDI.get_record", ct, vdi));
                var shared = XenValue.AsList(r.GetValueOrDefault("VBDs")).Count > 1 ? " ** WARNING: disk is shared by other VMs" : "";
                lines.Add($"VDI: {XenValue.AsString(r.GetValueOrDefault("uuid"))} ({XenValue.AsString(r.GetValueOrDefault("name_label"))}) {shared}");
            }

            plans.Add((vm, vdis, suspend));
        }

        c.Printer.Print("The following items are about to be destroyed");
        foreach (var line in lines)
        {
            c.Printer.Print(line);
        }

        if (!c.Params.Bool("force") && !await UserSaysYesAsync(c, ct))
        {
            return;
        }

        foreach (var (vm, vdis, suspend) in plans)
        {
            if (await c.CallForStringAsync("VM.get_power_state", ct, vm) != "Halted")
            {
                await c.CallAsync("VM.hard_shutdown", ct, vm);
            }

            await c.CallAsync("VM.destroy", ct, vm);
            foreach (var vdi in vdis)
            {
                await c.CallAsync("VDI.destroy", ct, vdi);
            }

            if (suspend is not null)
            {
                try
                {
                    await c.CallAsync("VDI.destroy", ct, suspend);
                }
                catch (XenApiException)
                {
                    // xe ignores a suspend image it cannot destroy.
                }
            }
        }

        c.Printer.Print("All objects destroyed");
    }

    /// <summary>xe's <c>user_says_yes</c>.</summary>
    public static async Task<bool> UserSaysYesAsync(CommandContext c, CancellationToken ct)
    {
        c.Printer.Print("Type 'yes' to continue");
        var response = await c.Input.ReadLineAsync(ct) ?? "";
        if (response.Trim().Equals("yes", StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }

        c.Printer.Print($"Aborted (you typed: '{response}')");
        return false;
    }
}
