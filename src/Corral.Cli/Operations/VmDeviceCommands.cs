using Corral.Cli.Api;
using Corral.Api.Client;
using Corral.Cli.Records;
using Corral.Model;

namespace Corral.Cli.Operations;

/// <summary>A VM's disks, CDs, VIFs and vTPM: vm-disk-add/-remove/-list, vm-cd-add/-remove/-list/-insert/-eject, vm-vif-list, vtpm-create/-destroy.</summary>
public static class VmDeviceCommands
{
    private const CommandFlags VmStandard = CommandFlags.Standard | CommandFlags.VmSelectors;

    public static void Register(CommandRegistry r)
    {
        r.Add(new("vm-disk-add", ["disk-size", "device"], ["sr-uuid"],
            "Add a new disk to the selected VM(s). The device field should be selected from the field 'allowed-VBD-devices' of the VM.",
            VmStandard, DiskAddAsync));
        r.Add(new("vm-disk-remove", ["device"], [], "Remove a disk from the selected VM and destroy it.", VmStandard, DiskRemoveAsync));
        r.Add(new("vm-disk-list", [], ["vbd-params", "vdi-params"], "List the disks on the selected VM(s).", VmStandard,
            (c, ct) => Selection.ForVmsAsync(c, ["vbd-params", "vdi-params"], vm => DiskListAsync(c, vm, cds: false, ct), ct)));
        r.Add(new("vm-cd-add", ["cd-name", "device"], [],
            "Add a CD to the VM(s). The device field should be selected from the parameter 'allowed-VBD-devices' of the VM.",
            VmStandard, CdAddAsync));
        r.Add(new("vm-cd-list", [], ["vbd-params", "vdi-params"], "List the CDs currently attached to the VM(s).", VmStandard,
            (c, ct) => Selection.ForVmsAsync(c, ["vbd-params", "vdi-params"], vm => DiskListAsync(c, vm, cds: true, ct), ct)));
        r.Add(new("vm-cd-remove", ["cd-name"], [], "Remove the selected CDs from the VM(s).", VmStandard, CdRemoveAsync));
        r.Add(new("cd-list", [], ["params"], "List the CDs available to be attached to VMs.", CommandFlags.Standard, CdListAsync));
        r.Add(new("vm-cd-eject", [], [],
            "Eject a CD from the virtual CD drive. This command will only work if there is one and only one CD attached to the VM. When there are two or more CDs, please use the command 'vbd-eject' and specify the uuid of the VBD.",
            VmStandard, CdEjectAsync));
        r.Add(new("vm-cd-insert", ["cd-name"], [],
            "Insert a CD into the virtual CD drive. This command will only work if there is one and only one empty CD device attached to the VM. When there are two or more empty CD devices, please use the command 'vbd-insert' and specify the uuids of the VBD and of the VDI to insert.",
            VmStandard, CdInsertAsync));
        r.Add(new("vm-vif-list", [], [], "List the VIFs present on selected VM.", VmStandard, VifListAsync));
        r.Add(new("vtpm-create", ["vm-uuid"], ["is-unique"], "Create a VTPM associated with a VM.", CommandFlags.None, async (c, ct) =>
        {
            var vm = await c.CallForStringAsync("VM.get_by_uuid", ct, c.Params.Required("vm-uuid"));
            // xe reads the flag under either spelling.
            var unique = c.Params.Bool("is_unique") || c.Params.Bool("is-unique");
            var vtpm = await c.CallForStringAsync("VTPM.create", ct, vm, unique);
            c.Printer.Line(await c.CallForStringAsync("VTPM.get_uuid", ct, vtpm));
        }));
        r.Add(new("vtpm-destroy", ["uuid"], ["force"], "Destroy a VTPM", CommandFlags.None, async (c, ct) =>
        {
            var uuid = c.Params.Required("uuid");
            if (!c.Params.Bool("force"))
            {
                throw new XeFailure(VmCommands.NoForceMessage);
            }

            await c.CallAsync("VTPM.destroy", ct, await c.CallForStringAsync("VTPM.get_by_uuid", ct, uuid));
        }));
    }

    /// <summary>xe's <c>create_vbd_and_plug</c>: the VBD record, then a hot-plug attempt whose failure is not an error.</summary>
    private static async Task CreateVbdAndPlugAsync(CommandContext c, string vm, string vdi, string device, string mode, string type,
        IReadOnlyDictionary<string, string> otherConfig, CancellationToken ct)
    {
        var vbd = await c.CallForStringAsync("VBD.create", ct, new Dictionary<string, object?>
        {
            ["VM"] = vm,
            ["VDI"] = vdi,
            ["userdevice"] = device,
            ["bootable"] = false,
            ["mode"] = mode,
            ["type"] = type,
            ["unpluggable"] = true,
            ["empty"] = false,
            ["qos_algorithm_type"] = "",
            ["qos_algorithm_params"] = new Dictionary<string, string>(),
            ["other_config"] = otherConfig,
            ["device"] = "",
            ["currently_attached"] = false,
        });
        try
        {
            await c.CallAsync("VBD.plug", ct, vbd);
        }
        catch (XenApiException)
        {
            // xe: "VBD created but not hotplugged" (a halted VM, or a server without hot-plug).
        }
    }

    /// <summary>
    /// xe's vm-disk-add: a new "Created by xe" VDI on sr-uuid (else the pool's default SR) and a VBD owning it; the
    /// VDI is destroyed again if the VBD cannot be made.
    /// </summary>
    private static async Task DiskAddAsync(CommandContext c, CancellationToken ct)
    {
        var size = XeValues.ParseBytes("disk-size", c.Params.Required("disk-size"));
        var device = c.Params.Required("device");
        var srUuid = c.Params.Get("sr-uuid")
                     ?? await VmCommands.DefaultSrUuidAsync(c, ct)
                     ?? throw new XeFailure("No default Pool SR set; you must specify an SR on the commandline");
        var sr = await c.CallForStringAsync("SR.get_by_uuid", ct, srUuid);
        await Selection.ForVmsAsync(c, ["sr-uuid", "device", "disk-size"], async vm =>
        {
            var vdi = await c.CallForStringAsync("VDI.create", ct, new Dictionary<string, object?>
            {
                ["name_label"] = "Created by xe",
                ["name_description"] = "Created by xe",
                ["SR"] = sr,
                ["virtual_size"] = size,
                ["type"] = "user",
                ["sharable"] = false,
                ["read_only"] = false,
                ["other_config"] = new Dictionary<string, string>(),
                ["xenstore_data"] = new Dictionary<string, string>(),
                ["sm_config"] = new Dictionary<string, string> { ["vmhint"] = vm.Uuid },
                ["tags"] = new List<object?>(),
            });
            try
            {
                await CreateVbdAndPlugAsync(c, vm.Ref, vdi, device, "RW", "Disk", new Dictionary<string, string> { ["owner"] = "" }, ct);
            }
            catch (XenApiException)
            {
                await c.CallAsync("VDI.destroy", ct, vdi);
                throw;
            }
        }, ct);
    }

    private static Task DiskRemoveAsync(CommandContext c, CancellationToken ct)
    {
        var device = c.Params.Required("device");
        return Selection.ForVmsAsync(c, ["device"], async vm =>
        {
            foreach (var vbd in vm.Strings("VBDs"))
            {
                if (await c.CallForStringAsync("VBD.get_userdevice", ct, vbd) == device)
                {
                    var vdi = await c.CallForStringAsync("VBD.get_VDI", ct, vbd);
                    await c.CallAsync("VBD.destroy", ct, vbd);
                    await c.CallAsync("VDI.destroy", ct, vdi);
                    return;
                }
            }

            throw new XeFailure("Disk not found");
        }, ct);
    }

    /// <summary>
    /// xe's vm-disk-list / vm-cd-list: for each disk (or CD) "Disk N VBD:" and its VBD record, then "Disk N VDI:" and
    /// its VDI record unless the drive is empty. vbd-params= and vdi-params= choose the fields.
    /// </summary>
    private static async Task DiskListAsync(CommandContext c, XenRecord vm, bool cds, CancellationToken ct)
    {
        var vbdClass = XeClasses.Get("vbd");
        var vdiClass = XeClasses.Get("vdi");
        await c.Cache.AllAsync("VBD", ct);
        var wantedType = cds ? "CD" : "Disk";
        var vbds = vm.Strings("VBDs").Select(r => c.Cache.Find("VBD", r)).OfType<XenRecord>().Where(v => v.Str("type") == wantedType).ToList();
        var vbdFields = RecordEngine.Select(vbdClass, c.Params.Get("vbd-params"),
            cds ? ["uuid", "vm-name-label", "userdevice", "empty"] : ["uuid", "vm-name-label", "userdevice"]);
        var vdiFields = RecordEngine.Select(vdiClass, c.Params.Get("vdi-params"), ["uuid", "name-label", "virtual-size", "sr-name-label"]);
        await c.Cache.AllAsync("VDI", ct);
        await c.Records.PrepareAsync(vbds, vbdFields, ct);
        var vdis = vbds.Where(v => !v.Bool("empty")).Select(v => c.Cache.Find("VDI", v.Str("VDI"))).OfType<XenRecord>().ToList();
        await c.Records.PrepareAsync(vdis, vdiFields, ct);
        var n = 0;
        foreach (var vbd in vbds)
        {
            var label = (cds ? "CD " : "Disk ") + n;
            c.Printer.Message(label + " VBD:");
            c.Printer.Table([await c.Records.RowAsync(vbd, vbdFields, inList: false, ct)]);
            if (!vbd.Bool("empty") && c.Cache.Find("VDI", vbd.Str("VDI")) is { } vdi)
            {
                c.Printer.Message(label + " VDI:");
                c.Printer.Table([await c.Records.RowAsync(vdi, vdiFields, inList: false, ct)]);
            }

            n++;
        }
    }

    /// <summary>xe's cd-list: every VDI of the SRs whose content type is iso, as a table of name-label and uuid (params= others).</summary>
    private static async Task CdListAsync(CommandContext c, CancellationToken ct)
    {
        var vdis = await c.Cache.AllAsync("VDI", ct);
        await c.Cache.AllAsync("SR", ct);
        var cds = vdis.Where(v => c.Cache.Find("SR", v.Str("SR"))?.Str("content_type") == "iso").ToList();
        var fields = RecordEngine.Select(XeClasses.Get("vdi"), c.Params.Get("params"), ["name-label", "uuid"]);
        await c.Records.PrepareAsync(cds, fields, ct);
        var rows = new List<IReadOnlyList<KeyValuePair<string, string>>>();
        foreach (var cd in cds)
        {
            rows.Add(await c.Records.RowAsync(cd, fields, inList: true, ct));
        }

        c.Printer.Table(rows);
    }

    /// <summary>The VDIs of ISO SRs named as given (xe's CD lookup).</summary>
    private static async Task<IReadOnlyList<XenRecord>> IsoVdisAsync(CommandContext c, string name, CancellationToken ct)
    {
        var vdis = await c.Cache.AllAsync("VDI", ct);
        await c.Cache.AllAsync("SR", ct);
        return vdis.Where(v => v.Str("name_label") == name && c.Cache.Find("SR", v.Str("SR"))?.Str("content_type") == "iso").ToList();
    }

    private static async Task CdAddAsync(CommandContext c, CancellationToken ct)
    {
        var name = c.Params.Required("cd-name");
        var device = c.Params.Required("device");
        var vdis = await IsoVdisAsync(c, name, ct);
        if (vdis.Count == 0)
        {
            throw new XeFailure($"CD {name} not found!");
        }

        await Selection.ForVmsAsync(c, ["cd-name", "device", "cd-location"],
            vm => CreateVbdAndPlugAsync(c, vm.Ref, vdis[0].Ref, device, "RO", "CD", new Dictionary<string, string>(), ct), ct);
    }

    private static async Task CdRemoveAsync(CommandContext c, CancellationToken ct)
    {
        var name = c.Params.Required("cd-name");
        await c.Cache.LoadAsync(["VBD", "VDI", "SR"], ct);
        await Selection.ForVmsAsync(c, ["cd-name"], async vm =>
        {
            foreach (var vbd in vm.Strings("VBDs"))
            {
                var vdi = c.Cache.Find("VDI", c.Cache.Find("VBD", vbd)?.Str("VDI"));
                var matches = vdi is null
                    ? name == "<EMPTY>"
                    : c.Cache.Find("SR", vdi.Str("SR"))?.Str("content_type") == "iso" && vdi.Str("name_label") == name;
                if (matches)
                {
                    await c.CallAsync("VBD.destroy", ct, vbd);
                    return;
                }
            }

            throw new XeFailure("Disk not found");
        }, ct);
    }

    private static async Task<List<XenRecord>> CdDrivesAsync(CommandContext c, XenRecord vm, CancellationToken ct)
    {
        await c.Cache.AllAsync("VBD", ct);
        return vm.Strings("VBDs").Select(r => c.Cache.Find("VBD", r)).OfType<XenRecord>().Where(v => v.Str("type") == "CD").ToList();
    }

    private static Task CdEjectAsync(CommandContext c, CancellationToken ct) =>
        Selection.ForVmsAsync(c, [], async vm =>
        {
            var cds = await CdDrivesAsync(c, vm, ct);
            switch (cds.Count)
            {
                case 0:
                    throw new XeFailure("No CDs found");
                case > 1:
                    throw new XeFailure("Two or more CDs found. Please use vbd-eject");
            }

            await c.CallAsync("VBD.eject", ct, cds[0].Ref);
        }, ct);

    private static async Task CdInsertAsync(CommandContext c, CancellationToken ct)
    {
        var name = c.Params.Required("cd-name");
        var vdis = await IsoVdisAsync(c, name, ct);
        switch (vdis.Count)
        {
            case 0:
                throw new XeFailure($"CD {name} not found");
            case > 1:
                throw new XeFailure($"Multiple CDs named {name} found. Please use vbd-insert and specify uuids");
        }

        await Selection.ForVmsAsync(c, ["cd-name"], async vm =>
        {
            var empty = (await CdDrivesAsync(c, vm, ct)).Where(v => v.Bool("empty")).ToList();
            switch (empty.Count)
            {
                case 0:
                    throw new XenApiException(ErrorCodes.VmNoEmptyCdVbd, vm.Ref);
                case > 1:
                    throw new XeFailure("Two or more empty CD devices found. Please use vbd-insert");
            }

            await c.CallAsync("VBD.insert", ct, empty[0].Ref, vdis[0].Ref);
        }, ct);
    }

    /// <summary>xe's vm-vif-list: the VIFs of every selected VM (--multiple implied); params= chooses the fields.</summary>
    private static async Task VifListAsync(CommandContext c, CancellationToken ct)
    {
        var withMultiple = new CommandContext(new XeParams([new("multiple", "true"), .. c.Params.All]), c.Session, c.Cache, c.Printer, c.Input, c.Registry);
        var vifClass = XeClasses.Get("vif");
        var fields = RecordEngine.Select(vifClass, c.Params.Get("params"), ["uuid", "device", "MAC", "network-uuid", "network-name-label", "vm-name-label"]);
        await Selection.ForVmsAsync(withMultiple, ["params"], async vm =>
        {
            await c.Cache.AllAsync("VIF", ct);
            var vifs = vm.Strings("VIFs").Select(r => c.Cache.Find("VIF", r)).OfType<XenRecord>().ToList();
            await ClassCommands.PrintAsync(c, vifs, fields, inList: false, ct);
        }, ct);
    }
}
