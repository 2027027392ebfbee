using System.Globalization;
using Corral.Api.Client;
using Corral.Cli.Api;
using Corral.Model;

namespace Corral.Cli.Operations;

/// <summary>
/// Attaching devices and storage: vbd-plug/-unplug, vif-plug/-unplug, pbd-create/-destroy/-plug/-unplug, sr-probe,
/// sr-probe-ext, sr-introduce, with xe's parameters and output.
/// </summary>
public static class AttachCommands
{
    public static void Register(CommandRegistry r)
    {
        r.Add(new("vbd-plug", ["uuid"], [], "Attempt to attach the VBD while the VM is in the running state.", CommandFlags.None,
            (c, ct) => StorageCommands.OnUuidAsync(c, "VBD", "VBD.plug", ct)));
        r.Add(new("vbd-unplug", ["uuid"], ["timeout", "force"],
            "Attempt to detach the VBD while the VM is in the running state. If the optional argument 'timeout=N' is given then the command will wait for up to 'N' seconds for the unplug to complete. If the optional argument 'force' is given then it will be immediately unplugged.",
            CommandFlags.None, VbdUnplugAsync));
        r.Add(new("vif-plug", ["uuid"], [], "Attempt to attach the VIF while the VM is in the running state.", CommandFlags.None,
            (c, ct) => StorageCommands.OnUuidAsync(c, "VIF", "VIF.plug", ct)));
        r.Add(new("vif-unplug", ["uuid"], ["force"], "Attempt to detach the VIF while the VM is in the running state.", CommandFlags.None,
            (c, ct) => StorageCommands.OnUuidAsync(c, "VIF", c.Params.Bool("force") ? "VIF.unplug_force" : "VIF.unplug", ct)));
        r.Add(new("pbd-create", ["host-uuid", "sr-uuid"], ["device-config:"],
            "Create a PBD. The read-only device-config parameter can only be set on creation in the following manner. To\nadd a mapping of 'path' -> '/tmp', the command line should contain the argument device-config:path=/tmp",
            CommandFlags.None, PbdCreateAsync));
        r.Add(new("pbd-destroy", ["uuid"], [], "Destroy the PBD.", CommandFlags.None, (c, ct) => StorageCommands.OnUuidAsync(c, "PBD", "PBD.destroy", ct)));
        r.Add(new("pbd-plug", ["uuid"], [],
            "Attempt to plug in the PBD to the host. If this succeeds then the referenced SR (and the VDIs contained within) should be visible to the host.",
            CommandFlags.None, (c, ct) => StorageCommands.OnUuidAsync(c, "PBD", "PBD.plug", ct)));
        r.Add(new("pbd-unplug", ["uuid"], [],
            "Attempt to unplug the PBD from the host. If this succeeds then the referenced SR (and the VDIs contained within) should not be visible to the host.",
            CommandFlags.None, (c, ct) => StorageCommands.OnUuidAsync(c, "PBD", "PBD.unplug", ct)));
        r.Add(new("sr-probe", ["type"], ["host-uuid", "device-config:", "sm-config:"],
            "Perform a storage probe.  The device-config parameters can be specified by device-config:devs=/dev/sdb1, for example.",
            CommandFlags.None, SrProbeAsync));
        r.Add(new("sr-probe-ext", ["type"], ["host-uuid", "device-config:", "sm-config:"],
            "Perform a storage probe. The device-config parameters can be specified by device-config:devs=/dev/sdb1, for example. Unlike sr-probe, this command returns results in the same human-readable format for every SR type.",
            CommandFlags.None, SrProbeExtAsync));
        r.Add(new("sr-introduce", ["name-label", "type", "uuid"], ["name-description", "shared", "content-type"],
            "Introduces an SR (but does not create any PBDs).", CommandFlags.None, SrIntroduceAsync));
    }

    /// <summary>
    /// xe's vbd-unplug: VBD.unplug (unplug_force with force=true); when the guest has not let go yet
    /// (DEVICE_DETACH_REJECTED), waits up to timeout= seconds, looking every 5 s whether it has since.
    /// </summary>
    private static async Task VbdUnplugAsync(CommandContext c, CancellationToken ct)
    {
        var vbd = await c.CallForStringAsync("VBD.get_by_uuid", ct, c.Params.Required("uuid")).ConfigureAwait(false);
        var timeout = 0.0;
        if (c.Params.Get("timeout") is { } text && !double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out timeout))
        {
            throw new XeFailure("Failed to parse parameter 'timeout': expecting a float");
        }

        var started = DateTime.UtcNow;
        try
        {
            await c.CallAsync(c.Params.Bool("force") ? "VBD.unplug_force" : "VBD.unplug", ct, vbd).ConfigureAwait(false);
        }
        catch (XenApiException ex) when (ex.Code == ErrorCodes.DeviceDetachRejected)
        {
            while (DateTime.UtcNow - started < TimeSpan.FromSeconds(timeout))
            {
                await Task.Delay(TimeSpan.FromSeconds(5), ct).ConfigureAwait(false);
                if (!XenValue.AsBool(await c.CallAsync("VBD.get_currently_attached", ct, vbd).ConfigureAwait(false)))
                {
                    return;
                }
            }

            throw;
        }
    }

    private static async Task PbdCreateAsync(CommandContext c, CancellationToken ct)
    {
        var host = await c.CallForStringAsync("host.get_by_uuid", ct, c.Params.Required("host-uuid")).ConfigureAwait(false);
        var sr = await c.CallForStringAsync("SR.get_by_uuid", ct, c.Params.Required("sr-uuid")).ConfigureAwait(false);
        var pbd = await c.CallForStringAsync("PBD.create", ct, new Dictionary<string, object?>
        {
            ["host"] = host,
            ["SR"] = sr,
            ["device_config"] = c.Params.Map("device-config").ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal),
            ["other_config"] = new Dictionary<string, string>(),
        }).ConfigureAwait(false);
        c.Printer.Line(await c.CallForStringAsync("PBD.get_uuid", ct, pbd).ConfigureAwait(false));
    }

    /// <summary>host-uuid, else the pool master (xe's parse_host_uuid).</summary>
    private static async Task<string> HostAsync(CommandContext c, CancellationToken ct)
    {
        if (c.Params.Get("host-uuid") is { } uuid)
        {
            return await c.CallForStringAsync("host.get_by_uuid", ct, uuid).ConfigureAwait(false);
        }

        var pools = XenValue.AsStrings(await c.CallAsync("pool.get_all", ct).ConfigureAwait(false));
        return pools.Count > 0
            ? await c.CallForStringAsync("pool.get_master", ct, pools[0]).ConfigureAwait(false)
            : throw new XeFailure("Required parameter not found: host-uuid");
    }

    private static async Task<object?> ProbeAsync(CommandContext c, string method, CancellationToken ct) =>
        await c.CallAsync(method, ct, await HostAsync(c, ct).ConfigureAwait(false),
            c.Params.Map("device-config").ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal),
            c.Params.Required("type"),
            c.Params.Map("sm-config").ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal)).ConfigureAwait(false);

    /// <summary>xe's sr-probe: the driver's answer (an XML document) as it comes.</summary>
    private static async Task SrProbeAsync(CommandContext c, CancellationToken ct) =>
        c.Printer.Line(XenValue.AsString(await ProbeAsync(c, "SR.probe", ct).ConfigureAwait(false)));

    /// <summary>xe's sr-probe-ext: the SRs found, then the complete and the incomplete configurations, as tables.</summary>
    private static async Task SrProbeExtAsync(CommandContext c, CancellationToken ct)
    {
        var results = XenValue.AsList(await ProbeAsync(c, "SR.probe_ext", ct).ConfigureAwait(false)).Select(XenValue.AsRecord).ToList();
        var srs = results.Where(r => XenValue.AsList(r.GetValueOrDefault("sr")).Count > 0).ToList();
        if (srs.Count > 0)
        {
            c.Printer.Message("The following SRs were found:");
            for (var i = 0; i < srs.Count; i++)
            {
                var sr = XenValue.AsRecord(XenValue.AsList(srs[i].GetValueOrDefault("sr"))[0]);
                var fields = new List<KeyValuePair<string, string>>();
                if (XenValue.AsStrings(sr.GetValueOrDefault("uuid")) is [var uuid, ..])
                {
                    fields.Add(new("uuid", uuid));
                }

                foreach (var (label, key) in new[]
                         {
                             ("name-label", "name_label"), ("name-description", "name_description"), ("total-space", "total_space"),
                             ("free-space", "free_space"), ("clustered", "clustered"), ("health", "health"),
                         })
                {
                    fields.Add(new(label, XenValue.AsString(sr.GetValueOrDefault(key))));
                }

                c.Printer.Message($"SR {i}:");
                c.Printer.Table([fields]);
                c.Printer.Message($"SR {i} configuration:");
                c.Printer.Table([XenValue.AsMap(srs[i].GetValueOrDefault("configuration"))]);
                c.Printer.Message($"SR {i} extra information:");
                c.Printer.Table([XenValue.AsMap(srs[i].GetValueOrDefault("extra_info"))]);
            }
        }

        var others = results.Except(srs).ToList();
        PrintConfigurations(c, "Found the following complete configurations that can be used to create SRs:",
            others.Where(r => XenValue.AsBool(r.GetValueOrDefault("complete"))).ToList());
        PrintConfigurations(c, "Found the following incomplete configurations that may contain SRs:",
            others.Where(r => !XenValue.AsBool(r.GetValueOrDefault("complete"))).ToList());
    }

    private static void PrintConfigurations(CommandContext c, string heading, IReadOnlyList<IReadOnlyDictionary<string, object?>> configurations)
    {
        if (configurations.Count == 0)
        {
            return;
        }

        c.Printer.Message(heading);
        for (var i = 0; i < configurations.Count; i++)
        {
            c.Printer.Message($"Configuration {i}:");
            c.Printer.Table([XenValue.AsMap(configurations[i].GetValueOrDefault("configuration"))]);
            c.Printer.Message($"Configuration {i} extra information:");
            c.Printer.Table([XenValue.AsMap(configurations[i].GetValueOrDefault("extra_info"))]);
        }
    }

    /// <summary>xe's sr-introduce: SR.introduce with the given uuid; prints it.</summary>
    private static async Task SrIntroduceAsync(CommandContext c, CancellationToken ct)
    {
        var uuid = c.Params.Required("uuid");
        await c.CallAsync("SR.introduce", ct, uuid, c.Params.Required("name-label"), c.Params.Get("name-description") ?? "", c.Params.Required("type"),
            c.Params.Get("content-type") ?? "", c.Params.Bool("shared"), c.Params.Map("sm-config").ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal))
            .ConfigureAwait(false);
        c.Printer.Line(uuid);
    }
}
