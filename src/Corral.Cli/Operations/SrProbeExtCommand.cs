using System.Globalization;
using Corral.Api.Client;
using Corral.Cli.Api;
using Corral.Model;

namespace Corral.Cli.Operations;

/// <summary>
/// xe's sr-probe-ext (the other attach commands, vbd-/vif-plug, pbd-*, sr-probe and sr-introduce, are in
/// <see cref="PlugCommands"/>).
/// </summary>
public static class SrProbeExtCommand
{
    public static void Register(CommandRegistry r) =>
        r.Add(new("sr-probe-ext", ["type"], ["host-uuid", "device-config:", "sm-config:"],
            "Perform a storage probe. The device-config parameters can be specified by device-config:devs=/dev/sdb1, for example. Unlike sr-probe, this command returns results in the same human-readable format for every SR type.",
            CommandFlags.None, SrProbeExtAsync));

    /// <summary>xe's sr-probe-ext: the SRs found, then the complete and the incomplete configurations, as tables.</summary>
    private static async Task SrProbeExtAsync(CommandContext c, CancellationToken ct)
    {
        var results = XenValue.AsList(await c.CallAsync("SR.probe_ext", ct, await StorageCommands.HostOrMasterAsync(c, defaultMaster: true, ct),
            c.Params.MapOf("device-config"), c.Params.Required("type"), c.Params.MapOf("sm-config"))).Select(XenValue.AsRecord).ToList();
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
}
