using System.Globalization;
using System.Xml;
using System.Xml.Linq;
using Corral.Api.Client;
using Corral.Model;

namespace Corral.Cli.Operations;

/// <summary>
/// Attaching storage and devices: vbd-plug/-unplug, vif-plug/-unplug, pbd-create/-destroy/-plug/-unplug, and the SR
/// commands that find or adopt existing storage, sr-probe and sr-introduce (cli_operations.ml).
/// </summary>
public static class PlugCommands
{
    /// <summary>xapi's code for a guest that refused to let a device go (vbd-unplug then polls, if given a timeout).</summary>
    private const string DeviceDetachRejected = "DEVICE_DETACH_REJECTED";

    /// <summary>How often xe looks again whether a refused VBD went after all: every 5 seconds, as xe.</summary>
    public static readonly TimeSpan DetachPollInterval = TimeSpan.FromSeconds(5);

    public static void Register(CommandRegistry r) => Register(r, DetachPollInterval);

    public static void Register(CommandRegistry r, TimeSpan detachPollInterval)
    {
        r.Add(new("vbd-plug", ["uuid"], [], "Attempt to attach the VBD while the VM is in the running state.", CommandFlags.None,
            (c, ct) => StorageCommands.OnUuidAsync(c, "VBD", "VBD.plug", ct)));
        r.Add(new("vbd-unplug", ["uuid"], ["timeout", "force"],
            "Attempt to detach the VBD while the VM is in the running state. If the optional argument 'timeout=N' is given then the command will wait for up to 'N' seconds for the unplug to complete. If the optional argument 'force' is given then it will be immediately unplugged.",
            CommandFlags.None, (c, ct) => VbdUnplugAsync(c, detachPollInterval, ct)));
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
        r.Add(new("sr-introduce", ["name-label", "type", "uuid"], ["name-description", "shared", "content-type"],
            "Introduces an SR (but does not create any PBDs).", CommandFlags.None, SrIntroduceAsync));
    }

    /// <summary>
    /// xe's vbd-unplug: <c>VBD.unplug</c> (<c>VBD.unplug_force</c> with force); when the guest refuses and a timeout
    /// is given, xe looks every few seconds whether the VBD went after all, until the timeout, then reports the refusal.
    /// </summary>
    private static async Task VbdUnplugAsync(CommandContext c, TimeSpan pollInterval, CancellationToken ct)
    {
        var vbd = await c.CallForStringAsync("VBD.get_by_uuid", ct, c.Params.Required("uuid"));
        var timeout = 0.0;
        if (c.Params.Get("timeout") is { } text && !double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out timeout))
        {
            throw new XeFailure("Failed to parse parameter 'timeout': expecting a float");
        }

        var force = c.Params.Bool("force");
        var started = TimeProvider.System.GetTimestamp();
        try
        {
            await c.CallAsync(force ? "VBD.unplug_force" : "VBD.unplug", ct, vbd);
        }
        catch (XenApiException ex) when (ex.Code == DeviceDetachRejected)
        {
            var unplugged = false;
            using var timer = new PeriodicTimer(pollInterval);
            while (!unplugged && TimeProvider.System.GetElapsedTime(started).TotalSeconds < timeout)
            {
                await timer.WaitForNextTickAsync(ct);
                unplugged = !XenValue.AsBool(await c.CallAsync("VBD.get_currently_attached", ct, vbd));
            }

            if (!unplugged)
            {
                throw;
            }
        }
    }

    /// <summary>
    /// xe's pbd-create: <c>PBD.create {host, SR, device_config, other_config}</c>, the device-config taken from every
    /// <c>device-config:key=value</c> (or the old <c>device-config-key=value</c>); prints the new PBD's uuid.
    /// </summary>
    private static async Task PbdCreateAsync(CommandContext c, CancellationToken ct)
    {
        const string prefix = "device-config";
        var deviceConfig = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in c.Params.All.Where(p => p.Key.StartsWith(prefix, StringComparison.Ordinal) && p.Key.Length > prefix.Length + 1))
        {
            deviceConfig.TryAdd(key[(prefix.Length + 1)..], value);
        }

        var host = await c.CallForStringAsync("host.get_by_uuid", ct, c.Params.Required("host-uuid"));
        var sr = await c.CallForStringAsync("SR.get_by_uuid", ct, c.Params.Required("sr-uuid"));
        var pbd = await c.CallForStringAsync("PBD.create", ct, new Dictionary<string, object?>
        {
            ["host"] = host,
            ["SR"] = sr,
            ["device_config"] = deviceConfig,
            ["other_config"] = new Dictionary<string, string>(),
        });
        c.Printer.Line(await c.CallForStringAsync("PBD.get_uuid", ct, pbd));
    }

    /// <summary>
    /// xe's sr-probe: <c>SR.probe(host, device_config, type, sm_config)</c> on host-uuid (else the master), and the
    /// storage's answer as it came, the XML a storage driver writes; an answer wrapped as XML-RPC's <c>Raw</c> is
    /// unwrapped first, as xe does.
    /// </summary>
    private static async Task SrProbeAsync(CommandContext c, CancellationToken ct)
    {
        var host = await StorageCommands.HostOrMasterAsync(c, defaultMaster: true, ct);
        var type = c.Params.Required("type");
        var deviceConfig = c.Params.MapOf("device-config");
        var smConfig = c.Params.MapOf("sm-config");
        var text = await c.CallForStringAsync("SR.probe", ct, host, deviceConfig, type, smConfig);
        c.Printer.Line(UnwrapRaw(text) ?? text);
    }

    /// <summary>The text of an XML-RPC value holding the variant <c>Raw x</c> (an array "Raw", x); null for anything else.</summary>
    public static string? UnwrapRaw(string text)
    {
        XElement value;
        try
        {
            value = XElement.Parse(text);
        }
        catch (XmlException)
        {
            return null;
        }

        if (value.Name != "value" || value.Element("array")?.Element("data") is not { } data)
        {
            return null;
        }

        var items = data.Elements("value").Select(v => v.Element("string")?.Value ?? (v.HasElements ? null : v.Value)).ToList();
        return items is ["Raw", { } raw] ? raw : null;
    }

    /// <summary>
    /// xe's sr-introduce: <c>SR.introduce(uuid, name_label, name_description, type, content_type, shared,
    /// sm_config)</c>, no PBD made; prints the uuid given.
    /// </summary>
    private static async Task SrIntroduceAsync(CommandContext c, CancellationToken ct)
    {
        var uuid = c.Params.Required("uuid");
        await c.CallAsync("SR.introduce", ct, uuid, c.Params.Required("name-label"), c.Params.Get("name-description") ?? "", c.Params.Required("type"),
            c.Params.Get("content-type") ?? "", c.Params.Bool("shared"), c.Params.MapOf("sm-config"));
        c.Printer.Line(uuid);
    }
}
