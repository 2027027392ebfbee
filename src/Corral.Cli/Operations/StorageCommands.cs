using Corral.Cli.Api;
using Corral.Api.Client;
using Corral.Cli.Records;
using Corral.Model;

namespace Corral.Cli.Operations;

/// <summary>SRs, VDIs and VBDs: sr-create/-scan/-destroy/-forget, vdi-create/-destroy/-resize/-clone, vbd-create/-destroy/-insert/-eject.</summary>
public static class StorageCommands
{
    public static void Register(CommandRegistry r)
    {
        r.Add(new("sr-create", ["name-label", "type"], ["name-description", "host-uuid", "device-config:", "shared", "physical-size", "content-type", "sm-config:"],
            "Create an SR, also a PBD. The device-config parameters can be specified by device-config:foo=baa, for example.",
            CommandFlags.None, SrCreateAsync));
        r.Add(new("sr-scan", ["uuid"], [],
            "Force an SR scan, syncing database with VDIs present in underlying storage substrate.", CommandFlags.None,
            (c, ct) => OnUuidAsync(c, "SR", "SR.scan", ct)));
        r.Add(new("sr-destroy", ["uuid"], [], "Destroy the SR.", CommandFlags.None, (c, ct) => OnUuidAsync(c, "SR", "SR.destroy", ct)));
        r.Add(new("sr-forget", ["uuid"], [], "Forget about the SR.", CommandFlags.None, (c, ct) => OnUuidAsync(c, "SR", "SR.forget", ct)));
        r.Add(new("vdi-create", ["sr-uuid", "name-label", "virtual-size"], ["sm-config:", "sharable", "tags:", "type"],
            "Create a VDI. Type is 'system' 'user' 'suspend' or 'crashdump'.", CommandFlags.None, VdiCreateAsync));
        r.Add(new("vdi-destroy", ["uuid"], [], "Destroy a VDI.", CommandFlags.None, (c, ct) => OnUuidAsync(c, "VDI", "VDI.destroy", ct)));
        r.Add(new("vdi-resize", ["uuid", "disk-size"], ["online"], "Resize a VDI.", CommandFlags.None, VdiResizeAsync));
        r.Add(new("vdi-clone", ["uuid"], ["driver-params-", "new-name-label", "new-name-description"], "Clone a specified VDI.",
            CommandFlags.None, VdiCloneAsync));
        r.Add(new("vbd-create", ["vm-uuid", "device"], ["vdi-uuid", "bootable", "type", "mode", "unpluggable"],
            "Create a VBD. Appropriate values for the device field are listed in the parameter 'allowed-VBD-devices' on the VM. If no VDI is specified, an empty VBD will be created. The type parameter can be 'Disk', 'CD' or 'Floppy', and the mode is 'RO' or 'RW'.",
            CommandFlags.None, VbdCreateAsync));
        r.Add(new("vbd-destroy", ["uuid"], [], "Destroy a VBD.", CommandFlags.None, (c, ct) => OnUuidAsync(c, "VBD", "VBD.destroy", ct)));
        r.Add(new("vbd-insert", ["uuid", "vdi-uuid"], [], "Insert new media into the drive represented by a VBD.", CommandFlags.None, async (c, ct) =>
        {
            var vbd = await c.CallForStringAsync("VBD.get_by_uuid", ct, c.Params.Required("uuid"));
            var vdi = await c.CallForStringAsync("VDI.get_by_uuid", ct, c.Params.Required("vdi-uuid"));
            await c.CallAsync("VBD.insert", ct, vbd, vdi);
        }));
        r.Add(new("vbd-eject", ["uuid"], [], "Remove the media from the drive represented by a VBD.", CommandFlags.None,
            (c, ct) => OnUuidAsync(c, "VBD", "VBD.eject", ct)));
    }

    /// <summary>The object of a uuid= parameter (<c>&lt;class&gt;.get_by_uuid</c>), then one call on it.</summary>
    public static async Task OnUuidAsync(CommandContext c, string apiClass, string method, CancellationToken ct)
    {
        var reference = await c.CallForStringAsync($"{apiClass}.get_by_uuid", ct, c.Params.Required("uuid"));
        await c.CallAsync(method, ct, reference);
    }

    /// <summary>
    /// xe's sr-create: the host is host-uuid, else the pool master for a shared SR or a one-host pool (else host-uuid
    /// is required); <c>SR.create(host, device_config, physical_size, name_label, name_description, type,
    /// content_type, shared, sm_config)</c>; prints the new SR's uuid.
    /// </summary>
    private static async Task SrCreateAsync(CommandContext c, CancellationToken ct)
    {
        var name = c.Params.Required("name-label");
        var description = c.Params.Get("name-description") ?? "";
        var shared = c.Params.Bool("shared");
        var host = await HostOrMasterAsync(c, shared, ct);

        var physicalSize = c.Params.Get("physical-size") is { } ps ? XeValues.TryParseBytes(ps) ?? 0 : 0;
        var deviceConfig = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in c.Params.Map("device-config"))
        {
            // device-config:k-filename=path: the value of k is the content of that (local) file.
            if (key.EndsWith("-filename", StringComparison.Ordinal))
            {
                if (!File.Exists(value))
                {
                    c.Printer.Stderr($"File not found: {value}");
                    throw new XeFailure("File not found");
                }

                deviceConfig[key[..^"-filename".Length]] = await File.ReadAllTextAsync(value, ct);
            }
            else
            {
                deviceConfig[key] = value;
            }
        }

        var smConfig = c.Params.Map("sm-config").ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        var sr = await c.CallForStringAsync("SR.create", ct, host, deviceConfig, physicalSize, name, description, c.Params.Required("type"),
            c.Params.Get("content-type") ?? "", shared, smConfig);
        c.Printer.Print(await c.CallForStringAsync("SR.get_uuid", ct, sr));
    }

    /// <summary>
    /// xe's <c>parse_host_uuid</c>: host-uuid's host, else the pool master when <paramref name="defaultMaster"/> or the
    /// pool has one host, else host-uuid is required.
    /// </summary>
    public static async Task<string> HostOrMasterAsync(CommandContext c, bool defaultMaster, CancellationToken ct)
    {
        if (c.Params.Get("host-uuid") is { } hostUuid)
        {
            return await c.CallForStringAsync("host.get_by_uuid", ct, hostUuid);
        }

        var hosts = XenValue.AsStrings(await c.CallAsync("host.get_all", ct));
        if (hosts.Count != 1 && !defaultMaster)
        {
            throw new XeFailure("Required parameter not found: host-uuid");
        }

        var pools = XenValue.AsStrings(await c.CallAsync("pool.get_all", ct));
        if (pools.Count == 0)
        {
            throw new XenApiException(ErrorCodes.InternalError, "Remote host does not belong to a pool.");
        }

        return await c.CallForStringAsync("pool.get_master", ct, pools[0]);
    }

    private static async Task VdiCreateAsync(CommandContext c, CancellationToken ct)
    {
        var sr = await c.CallForStringAsync("SR.get_by_uuid", ct, c.Params.Required("sr-uuid"));
        var name = c.Params.Required("name-label");
        var size = XeValues.ParseBytes("virtual-size", c.Params.Required("virtual-size"));
        var type = c.Params.Get("type") ?? "user";
        if (type is not ("system" or "user" or "suspend" or "crashdump"))
        {
            throw new XeFailure($"Unknown vdi type: {type}");
        }

        var vdi = await c.CallForStringAsync("VDI.create", ct, new Dictionary<string, object?>
        {
            ["name_label"] = name,
            ["name_description"] = "",
            ["SR"] = sr,
            ["virtual_size"] = size,
            ["type"] = type,
            ["sharable"] = c.Params.Bool("sharable"),
            ["read_only"] = false,
            ["xenstore_data"] = new Dictionary<string, string>(),
            ["other_config"] = new Dictionary<string, string>(),
            ["sm_config"] = c.Params.Map("sm-config").ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal),
            ["tags"] = c.Params.Map("tags").Select(kv => (object?)kv.Key).ToList(),
        });
        c.Printer.Line(await c.CallForStringAsync("VDI.get_uuid", ct, vdi));
    }

    private static async Task VdiResizeAsync(CommandContext c, CancellationToken ct)
    {
        var vdi = await c.CallForStringAsync("VDI.get_by_uuid", ct, c.Params.Required("uuid"));
        var size = XeValues.ParseBytes("disk-size", c.Params.Required("disk-size"));
        await c.CallAsync(c.Params.Get("online") == "true" ? "VDI.resize_online" : "VDI.resize", ct, vdi, size);
    }

    private static async Task VdiCloneAsync(CommandContext c, CancellationToken ct)
    {
        var vdi = await c.CallForStringAsync("VDI.get_by_uuid", ct, c.Params.Required("uuid"));
        var driverParams = c.Params.Map("driver-params").ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        var clone = await c.CallForStringAsync("VDI.clone", ct, vdi, driverParams);
        if (c.Params.Get("new-name-label") is { } label)
        {
            await c.CallAsync("VDI.set_name_label", ct, clone, label);
        }

        if (c.Params.Get("new-name-description") is { } description)
        {
            await c.CallAsync("VDI.set_name_description", ct, clone, description);
        }

        c.Printer.Line(await c.CallForStringAsync("VDI.get_uuid", ct, clone));
    }

    private static async Task VbdCreateAsync(CommandContext c, CancellationToken ct)
    {
        var vm = await c.CallForStringAsync("VM.get_by_uuid", ct, c.Params.Required("vm-uuid"));
        var empty = !c.Params.Has("vdi-uuid");
        var vdi = empty ? OpaqueRef.Null : await c.CallForStringAsync("VDI.get_by_uuid", ct, c.Params.Required("vdi-uuid"));
        var bootable = c.Params.Bool("bootable");
        var mode = c.Params.Get("mode") is { } m
            ? m.ToLowerInvariant() switch
            {
                "ro" => "RO",
                "rw" => "RW",
                _ => throw new XeFailure($"Unknown mode: {m} (should be \"ro\" or \"rw\""),
            }
            : "RW";
        var type = c.Params.Get("type") is { } t
            ? t.ToLowerInvariant() switch
            {
                "cd" => "CD",
                "disk" => "Disk",
                "floppy" => "Floppy",
                _ => throw new XeFailure($"\"Unknown type: {t} (should be \"cd\", \"disk\" or \"floppy\""),
            }
            : "Disk";
        var unpluggable = c.Params.Bool("unpluggable", true);
        if (type == "Disk" && empty)
        {
            throw new XeFailure("Empty VBDs can only be made for type=CD");
        }

        var vbd = await c.CallForStringAsync("VBD.create", ct, new Dictionary<string, object?>
        {
            ["VM"] = vm,
            ["VDI"] = vdi,
            ["userdevice"] = c.Params.Required("device"),
            ["bootable"] = bootable,
            ["mode"] = mode,
            ["type"] = type,
            ["unpluggable"] = unpluggable,
            ["empty"] = empty,
            ["qos_algorithm_type"] = "",
            ["qos_algorithm_params"] = new Dictionary<string, string>(),
            ["other_config"] = new Dictionary<string, string>(),
            ["device"] = "",
            ["currently_attached"] = false,
        });
        c.Printer.Line(await c.CallForStringAsync("VBD.get_uuid", ct, vbd));
    }
}
