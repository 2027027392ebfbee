using System.Globalization;
using Corral.Model;

namespace Corral.Cli;

/// <summary>The xe commands: lists, parameter access, and the VM, SR and VDI operations.</summary>
public sealed class Commands(XenApiClient api, CliArguments args, TextWriter output)
{
    private readonly PoolView _view = new(api);

    private static readonly HashSet<string> SelectorKeys = new(StringComparer.Ordinal) { "params", "vm", "host", "sr", "template", "uuid" };

    public async Task<int> RunAsync(CancellationToken ct)
    {
        var command = args.Command;
        if (command.EndsWith("-list", StringComparison.Ordinal) && !command.StartsWith("vm-disk", StringComparison.Ordinal) && !command.Contains("param", StringComparison.Ordinal))
        {
            return await ListAsync(command[..^5], ct);
        }

        if (command.EndsWith("-param-list", StringComparison.Ordinal))
        {
            return await ParamListAsync(command[..^11], ct);
        }

        if (command.EndsWith("-param-get", StringComparison.Ordinal))
        {
            return await ParamGetAsync(command[..^10], ct);
        }

        if (command.EndsWith("-param-set", StringComparison.Ordinal))
        {
            return await ParamSetAsync(command[..^10], ct);
        }

        switch (command)
        {
            case "vm-install":
                return await VmInstallAsync(ct);
            case "vm-start":
                return await VmOperationAsync((vm, c) => args.Get("on") is { } on
                    ? OnHostAsync(vm, on, c)
                    : api.InvokeAsync("VM.start", c, vm, args.Flags.Contains("paused"), args.Force), ct);
            case "vm-shutdown":
                return await VmOperationAsync((vm, c) => api.InvokeAsync(args.Force ? "VM.hard_shutdown" : "VM.clean_shutdown", c, vm), ct);
            case "vm-reboot":
                return await VmOperationAsync((vm, c) => api.InvokeAsync(args.Force ? "VM.hard_reboot" : "VM.clean_reboot", c, vm), ct);
            case "vm-pause":
                return await VmOperationAsync((vm, c) => api.InvokeAsync("VM.pause", c, vm), ct);
            case "vm-unpause":
                return await VmOperationAsync((vm, c) => api.InvokeAsync("VM.unpause", c, vm), ct);
            case "vm-destroy":
                return await VmOperationAsync((vm, c) => api.InvokeAsync("VM.destroy", c, vm), ct);
            case "vm-reset-powerstate":
                if (!args.Force)
                {
                    throw new CliException("This operation is dangerous: the VM must really be off (its host dead). Add --force to proceed.");
                }

                return await VmOperationAsync((vm, c) => api.InvokeAsync("VM.power_state_reset", c, vm), ct);
            case "pool-designate-new-master":
                await api.InvokeAsync("pool.designate_new_master", ct, await RefByUuidAsync(XenClasses.Host, Required("host-uuid"), ct));
                return 0;
            case "vm-uninstall":
                return await VmUninstallAsync(ct);
            case "sr-create":
                return await SrCreateAsync(ct);
            case "sr-scan":
                await api.InvokeAsync("SR.scan", ct, await RefByUuidAsync(XenClasses.SR, Required("uuid"), ct));
                return 0;
            case "vdi-create":
                return await VdiCreateAsync(ct);
            case "vdi-destroy":
                await api.InvokeAsync("VDI.destroy", ct, await RefByUuidAsync(XenClasses.VDI, Required("uuid"), ct));
                return 0;
            case "vdi-resize":
                await api.InvokeAsync("VDI.resize", ct, await RefByUuidAsync(XenClasses.VDI, Required("uuid"), ct), Size(Required("disk-size")).ToString(CultureInfo.InvariantCulture));
                return 0;
            case "vdi-clone":
                var clone = (string)(await api.InvokeAsync("VDI.clone", ct, await RefByUuidAsync(XenClasses.VDI, Required("uuid"), ct), new Dictionary<string, string>()))!;
                output.WriteLine(await api.InvokeAsync("VDI.get_uuid", ct, clone));
                return 0;
            case "vm-disk-add":
                return await VmDiskAddAsync(ct);
            case "vm-cd-add":
                return await VmCdAddAsync(ct);
            case "vm-cd-insert":
                return await VmCdChangeAsync(insert: true, ct);
            case "vm-cd-eject":
                return await VmCdChangeAsync(insert: false, ct);
            case "host-enable":
            case "host-disable":
                foreach (var host in await SelectAsync("host", ct, requireOne: false))
                {
                    await api.InvokeAsync(command == "host-enable" ? "host.enable" : "host.disable", ct, host.Key);
                }

                return 0;
            default:
                throw new CliException($"Unknown command: {command}\nFor usage run: 'xe help'");
        }
    }

    private string Required(string key) => args.Get(key) ?? throw new CliException($"Required parameter not found: {key}");

    private async Task<object?> OnHostAsync(string vm, string host, CancellationToken ct)
    {
        var hosts = await _view.AllAsync(XenClasses.Host, ct);
        var target = hosts.FirstOrDefault(h => (string?)h.Value["uuid"] == host || (string?)h.Value["name_label"] == host).Key
                     ?? throw new CliException($"Host '{host}' not found");
        return await api.InvokeAsync("VM.start_on", ct, vm, target, false, args.Force);
    }

    /// <summary>Sizes as xe takes them: bytes, or with KiB/MiB/GiB/TiB (and K/M/G/T) suffixes.</summary>
    public static long Size(string text)
    {
        var units = new (string Suffix, long Factor)[] { ("TiB", 1L << 40), ("GiB", 1L << 30), ("MiB", 1L << 20), ("KiB", 1L << 10), ("T", 1L << 40), ("G", 1L << 30), ("M", 1L << 20), ("K", 1L << 10) };
        foreach (var (suffix, factor) in units)
        {
            if (text.EndsWith(suffix, StringComparison.OrdinalIgnoreCase) && long.TryParse(text[..^suffix.Length], NumberStyles.None, CultureInfo.InvariantCulture, out var n))
            {
                return n * factor;
            }
        }

        return long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var bytes) ? bytes : throw new CliException($"Invalid size: {text}");
    }

    private async Task<string> RefByUuidAsync(string className, string uuid, CancellationToken ct)
    {
        var all = await _view.AllAsync(className, ct);
        return all.FirstOrDefault(kv => (string?)kv.Value["uuid"] == uuid).Key ?? throw new XenApiException(ErrorCodes.UuidInvalid, className, uuid);
    }

    /// <summary>Objects of an xe class matching the command's selectors and field filters.</summary>
    private async Task<List<KeyValuePair<string, Dictionary<string, object?>>>> SelectAsync(string xeClass, CancellationToken ct, bool requireOne = true)
    {
        var className = ParamCatalog.ClassOf(xeClass);
        await _view.PreloadAsync(ParamCatalog.RelatedClasses(className), ct);
        var records = await _view.AllAsync(className, ct);
        var catalog = ParamCatalog.For(xeClass).ToDictionary(p => p.Name, StringComparer.Ordinal);
        IEnumerable<KeyValuePair<string, Dictionary<string, object?>>> matches = records;
        if (className == XenClasses.VM)
        {
            var templates = xeClass == "template";
            matches = matches.Where(kv => (bool)(kv.Value["is_a_template"] ?? false) == templates && !(bool)(kv.Value["is_control_domain"] ?? false)
                                          && (templates || !(bool)(kv.Value["is_a_snapshot"] ?? false)));
        }

        var selector = args.Get(xeClass);
        if (selector is not null)
        {
            matches = matches.Where(kv => (string?)kv.Value["uuid"] == selector || (string?)kv.Value["name_label"] == selector);
        }

        foreach (var (key, value) in args.Parameters)
        {
            if (SelectorKeys.Contains(key) && key != "uuid" || !catalog.TryGetValue(key, out var param))
            {
                continue;
            }

            matches = matches.Where(kv => param.Print(_view, kv.Value) == value);
        }

        var list = matches.ToList();
        if (requireOne && list.Count == 0 && (selector is not null || args.Parameters.Any(p => catalog.ContainsKey(p.Key))))
        {
            throw new CliException($"No matching {xeClass}s found");
        }

        return list;
    }

    private async Task<int> ListAsync(string xeClass, CancellationToken ct)
    {
        var rows = await SelectAsync(xeClass, ct, requireOne: false);
        var catalog = ParamCatalog.For(xeClass);
        var wanted = args.Get("params") is { } p
            ? p == "all" ? catalog.Select(c => c.Name).ToArray() : p.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            : ParamCatalog.DefaultListParams.GetValueOrDefault(xeClass, ["uuid", "name-label"]);
        var byName = catalog.ToDictionary(c => c.Name, StringComparer.Ordinal);
        foreach (var name in wanted)
        {
            if (!byName.ContainsKey(name))
            {
                throw new CliException($"Unknown parameter: {name}");
            }
        }

        if (args.Minimal)
        {
            output.WriteLine(string.Join(",", rows.Select(r => byName[wanted[0]].Print(_view, r.Value))));
            return 0;
        }

        foreach (var row in rows)
        {
            output.Write(Printer.Record(wanted.Select(n => (n, byName[n].Access, byName[n].Print(_view, row.Value))).ToList()));
            output.Write("\n\n");
        }

        return 0;
    }

    private async Task<KeyValuePair<string, Dictionary<string, object?>>> OneByUuidAsync(string xeClass, CancellationToken ct)
    {
        var uuid = Required("uuid");
        var className = ParamCatalog.ClassOf(xeClass);
        await _view.PreloadAsync(ParamCatalog.RelatedClasses(className), ct);
        var records = await _view.AllAsync(className, ct);
        var match = records.FirstOrDefault(kv => (string?)kv.Value["uuid"] == uuid);
        return match.Key is null ? throw new XenApiException(ErrorCodes.UuidInvalid, xeClass, uuid) : match;
    }

    private async Task<int> ParamListAsync(string xeClass, CancellationToken ct)
    {
        var obj = await OneByUuidAsync(xeClass, ct);
        var catalog = ParamCatalog.For(xeClass);
        output.Write(Printer.Record(catalog.Select(c => (c.Name, c.Access, c.Print(_view, obj.Value))).ToList()));
        output.Write("\n\n");
        return 0;
    }

    private async Task<int> ParamGetAsync(string xeClass, CancellationToken ct)
    {
        var obj = await OneByUuidAsync(xeClass, ct);
        var name = Required("param-name");
        var param = ParamCatalog.For(xeClass).FirstOrDefault(c => c.Name == name) ?? throw new CliException($"Unknown parameter: {name}");
        if (args.Get("param-key") is { } key)
        {
            var raw = param.Field is null ? null : ResolveMap(xeClass, obj.Value, param.Field);
            if (raw is not IDictionary<string, object?> map || !map.TryGetValue(key, out var v))
            {
                throw new CliException($"Key {key} not found in map");
            }

            output.WriteLine(Printer.Format(v));
            return 0;
        }

        output.WriteLine(param.Print(_view, obj.Value));
        return 0;
    }

    /// <summary>The raw map behind a map parameter (guest metrics maps live on another object).</summary>
    private object? ResolveMap(string xeClass, Dictionary<string, object?> record, string field)
    {
        if (record.TryGetValue(field, out var direct))
        {
            return direct;
        }

        return ParamCatalog.ClassOf(xeClass) == XenClasses.VM
            ? _view.Find(XenClasses.VMGuestMetrics, record["guest_metrics"] as string ?? "")?.GetValueOrDefault(field)
            : null;
    }

    private async Task<int> ParamSetAsync(string xeClass, CancellationToken ct)
    {
        var obj = await OneByUuidAsync(xeClass, ct);
        var className = ParamCatalog.ClassOf(xeClass);
        var schema = XenClasses.Get(className);
        foreach (var (key, value) in args.Parameters.Where(p => p.Key != "uuid"))
        {
            var colon = key.IndexOf(':', StringComparison.Ordinal);
            var name = colon > 0 ? key[..colon] : key;
            var field = schema.Fields.FirstOrDefault(f => ParamCatalog.XeName(f.Name) == name)
                        ?? throw new CliException($"Unknown parameter: {name}");
            if (colon > 0)
            {
                if (!field.IsMap || field.Access != FieldAccess.RW)
                {
                    throw new CliException($"Parameter {name} is not a settable map");
                }

                var mapKey = key[(colon + 1)..];
                await api.InvokeAsync($"{className}.remove_from_{field.Name}", ct, obj.Key, mapKey);
                await api.InvokeAsync($"{className}.add_to_{field.Name}", ct, obj.Key, mapKey, value);
                continue;
            }

            object? arg = value;
            if (field.Type is FieldType.RefTo to)
            {
                arg = OpaqueRef.IsUuid(value) ? await RefByUuidAsync(to.ClassName, value, ct) : value.Length == 0 ? OpaqueRef.Null : throw new CliException($"Invalid uuid: {value}");
            }
            else if (field.Type == FieldType.Bool)
            {
                arg = value.ToLowerInvariant() switch { "true" => true, "false" => false, _ => throw new CliException($"Invalid boolean: {value}") };
            }
            else if (field.Type == FieldType.Int)
            {
                arg = key.StartsWith("memory", StringComparison.Ordinal) ? Size(value).ToString(CultureInfo.InvariantCulture) : value;
            }

            await api.InvokeAsync($"{className}.set_{field.Name}", ct, obj.Key, arg);
        }

        return 0;
    }

    private async Task<int> VmOperationAsync(Func<string, CancellationToken, Task<object?>> operation, CancellationToken ct)
    {
        var vms = await SelectAsync("vm", ct);
        if (vms.Count == 0)
        {
            throw new CliException("No matching VMs found");
        }

        if (vms.Count > 1 && !args.Multiple)
        {
            throw new CliException($"Multiple matches VMs found. Operation can only be performed on one VM at a time, unless --multiple is given");
        }

        foreach (var vm in vms)
        {
            await operation(vm.Key, ct);
        }

        return 0;
    }

    private async Task<string?> DefaultSrAsync(CancellationToken ct)
    {
        if (args.Get("sr-uuid") is { } uuid)
        {
            return await RefByUuidAsync(XenClasses.SR, uuid, ct);
        }

        if (args.Get("sr-name-label") is { } label)
        {
            return (await _view.AllAsync(XenClasses.SR, ct)).FirstOrDefault(s => (string?)s.Value["name_label"] == label).Key
                   ?? throw new CliException($"SR '{label}' not found");
        }

        var pool = (await _view.AllAsync(XenClasses.Pool, ct)).Values.FirstOrDefault();
        return pool?["default_SR"] is string sr && !OpaqueRef.IsNull(sr) ? sr : null;
    }

    private async Task<int> VmInstallAsync(CancellationToken ct)
    {
        var name = Required("new-name-label");
        var template = args.Get("template") ?? args.Get("template-uuid") ?? args.Get("template-name-label") ?? throw new CliException("Required parameter not found: template");
        var templates = (await _view.AllAsync(XenClasses.VM, ct)).Where(v => (bool)(v.Value["is_a_template"] ?? false)
            && ((string?)v.Value["uuid"] == template || (string?)v.Value["name_label"] == template)).ToList();
        if (templates.Count != 1)
        {
            throw new CliException(templates.Count == 0 ? $"No templates matched: {template}" : $"Multiple templates matched: {template}");
        }

        var sr = await DefaultSrAsync(ct);
        var vm = (string)(sr is null
            ? await api.InvokeAsync("VM.clone", ct, templates[0].Key, name)
            : await api.InvokeAsync("VM.copy", ct, templates[0].Key, name, sr))!;
        await api.InvokeAsync("VM.provision", ct, vm);
        await api.InvokeAsync("VM.set_is_a_template", ct, vm, false);
        output.WriteLine(await api.InvokeAsync("VM.get_uuid", ct, vm));
        return 0;
    }

    private async Task<int> VmUninstallAsync(CancellationToken ct)
    {
        var vms = await SelectAsync("vm", ct);
        foreach (var vm in vms)
        {
            if ((string?)vm.Value["power_state"] != "Halted")
            {
                if (!args.Force)
                {
                    throw new XenApiException(ErrorCodes.VmBadPowerState, vm.Key, "halted", ((string?)vm.Value["power_state"] ?? "").ToLowerInvariant());
                }

                await api.InvokeAsync("VM.hard_shutdown", ct, vm.Key);
            }

            var vdis = new List<string>();
            foreach (var vbd in (IEnumerable<object?>?)vm.Value["VBDs"] ?? [])
            {
                var record = (Dictionary<string, object?>)(await api.InvokeAsync("VBD.get_record", ct, vbd))!;
                if ((string?)record["type"] == "Disk" && record["VDI"] is string vdi && !OpaqueRef.IsNull(vdi))
                {
                    vdis.Add(vdi);
                }
            }

            await api.InvokeAsync("VM.destroy", ct, vm.Key);
            foreach (var vdi in vdis)
            {
                await api.InvokeAsync("VDI.destroy", ct, vdi);
            }
        }

        return 0;
    }

    private async Task<int> SrCreateAsync(CancellationToken ct)
    {
        var host = args.Get("host-uuid") is { } hu ? await RefByUuidAsync(XenClasses.Host, hu, ct)
            : (string)(await _view.AllAsync(XenClasses.Pool, ct)).Values.First()["master"]!;
        var deviceConfig = args.Parameters.Where(p => p.Key.StartsWith("device-config:", StringComparison.Ordinal))
            .ToDictionary(p => p.Key["device-config:".Length..], p => p.Value);
        var smConfig = args.Parameters.Where(p => p.Key.StartsWith("sm-config:", StringComparison.Ordinal))
            .ToDictionary(p => p.Key["sm-config:".Length..], p => p.Value);
        var size = args.Get("physical-size") is { } ps ? Size(ps) : 0;
        var sr = (string)(await api.InvokeAsync("SR.create", ct, host, deviceConfig, size.ToString(CultureInfo.InvariantCulture), Required("name-label"),
            args.Get("name-description") ?? "", Required("type"), args.Get("content-type") ?? "", args.Get("shared") == "true", smConfig))!;
        output.WriteLine(await api.InvokeAsync("SR.get_uuid", ct, sr));
        return 0;
    }

    private async Task<int> VdiCreateAsync(CancellationToken ct)
    {
        var sr = await RefByUuidAsync(XenClasses.SR, Required("sr-uuid"), ct);
        var vdi = (string)(await api.InvokeAsync("VDI.create", ct, new Dictionary<string, object?>
        {
            ["SR"] = sr,
            ["name_label"] = Required("name-label"),
            ["name_description"] = args.Get("name-description") ?? "",
            ["virtual_size"] = Size(Required("virtual-size")).ToString(CultureInfo.InvariantCulture),
            ["type"] = args.Get("type") ?? "user",
            ["sharable"] = args.Get("sharable") == "true",
            ["read_only"] = args.Get("read-only") == "true",
            ["other_config"] = new Dictionary<string, string>(),
        }))!;
        output.WriteLine(await api.InvokeAsync("VDI.get_uuid", ct, vdi));
        return 0;
    }

    private async Task<KeyValuePair<string, Dictionary<string, object?>>> OneVmAsync(CancellationToken ct)
    {
        var vms = await SelectAsync("vm", ct);
        return vms.Count == 1 ? vms[0] : throw new CliException(vms.Count == 0 ? "No matching VMs found" : "Multiple VMs matched; select one with uuid=");
    }

    private async Task<int> VmDiskAddAsync(CancellationToken ct)
    {
        var vm = await OneVmAsync(ct);
        var sr = await DefaultSrAsync(ct) ?? throw new CliException("No SR given and the pool has no default SR");
        var vdi = (string)(await api.InvokeAsync("VDI.create", ct, new Dictionary<string, object?>
        {
            ["SR"] = sr,
            ["name_label"] = $"{vm.Value["name_label"]} disk",
            ["virtual_size"] = Size(Required("disk-size")).ToString(CultureInfo.InvariantCulture),
            ["type"] = "user",
        }))!;
        await api.InvokeAsync("VBD.create", ct, new Dictionary<string, object?>
        {
            ["VM"] = vm.Key,
            ["VDI"] = vdi,
            ["userdevice"] = args.Get("device") ?? "autodetect",
            ["bootable"] = false,
            ["mode"] = "RW",
            ["type"] = "Disk",
            ["empty"] = false,
        });
        return 0;
    }

    private async Task<string> IsoVdiAsync(string name, CancellationToken ct)
    {
        var vdis = await _view.AllAsync(XenClasses.VDI, ct);
        var srs = await _view.AllAsync(XenClasses.SR, ct);
        return vdis.FirstOrDefault(v => (string?)v.Value["name_label"] == name && srs.TryGetValue((string)v.Value["SR"]!, out var sr) && (string?)sr["content_type"] == "iso").Key
               ?? throw new CliException($"CD '{name}' not found in any ISO library");
    }

    private async Task<int> VmCdAddAsync(CancellationToken ct)
    {
        var vm = await OneVmAsync(ct);
        var vdi = await IsoVdiAsync(Required("cd-name"), ct);
        await api.InvokeAsync("VBD.create", ct, new Dictionary<string, object?>
        {
            ["VM"] = vm.Key,
            ["VDI"] = vdi,
            ["userdevice"] = Required("device"),
            ["bootable"] = false,
            ["mode"] = "RO",
            ["type"] = "CD",
            ["empty"] = false,
        });
        return 0;
    }

    private async Task<int> VmCdChangeAsync(bool insert, CancellationToken ct)
    {
        var vm = await OneVmAsync(ct);
        var vbds = await _view.AllAsync(XenClasses.VBD, ct);
        var cds = vbds.Where(v => (string?)v.Value["VM"] == vm.Key && (string?)v.Value["type"] == "CD").ToList();
        if (cds.Count == 0)
        {
            throw new XenApiException(ErrorCodes.VmNoEmptyCdVbd, vm.Key);
        }

        if (insert)
        {
            var empty = cds.FirstOrDefault(c => (bool)(c.Value["empty"] ?? false));
            if (empty.Key is null)
            {
                throw new XenApiException(ErrorCodes.VmNoEmptyCdVbd, vm.Key);
            }

            await api.InvokeAsync("VBD.insert", ct, empty.Key, await IsoVdiAsync(Required("cd-name"), ct));
        }
        else
        {
            foreach (var cd in cds.Where(c => !(bool)(c.Value["empty"] ?? false)))
            {
                await api.InvokeAsync("VBD.eject", ct, cd.Key);
            }
        }

        return 0;
    }
}
