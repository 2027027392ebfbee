using System.Globalization;
using System.Xml;
using System.Xml.Linq;
using Corral.Api.Dispatch;
using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.Extensions.Logging;

namespace Corral.Api.Methods;

/// <summary>
/// <c>VM.provision</c> as xapi does it (xapi_templates.ml): the VM stops being a template, and the disks its
/// <c>other_config:disks</c> asks for (<c>&lt;provision&gt;&lt;disk device="0" size="..." sr="&lt;uuid&gt;"
/// bootable="true" type="system"/&gt;&lt;/provision&gt;</c>, which xe's vm-install points at the install's SR) are made:
/// a VDI each ("Created by template provisioner", named by its device) and a VBD at that device. Then the key goes, so
/// that the VM is not provisioned twice. A disk that cannot be made undoes the ones already made. The real
/// <c>VDI.create</c> and <c>VBD.create</c> do the work, as xapi's provisioner calls them.
/// </summary>
public sealed class VmProvisioning(IPoolDatabase database, ILogger<VmProvisioning> logger)
{
    public const string DisksKey = "disks";
    public const string PostInstallKey = "postinstall";

    /// <summary>One disk of a provisioning request.</summary>
    public sealed record Disk(string Device, long Size, string Sr, bool Bootable, VdiType Type);

    /// <summary>xapi's <c>disks_of_xml</c>.</summary>
    /// <exception cref="XenApiException">INTERNAL_ERROR: not a provisioning request (xapi's Parse_failure).</exception>
    public static IReadOnlyList<Disk> Parse(string xml)
    {
        try
        {
            var root = XElement.Parse(xml);
            if (root.Name.LocalName != "provision" || root.HasAttributes)
            {
                throw new FormatException("not <provision>");
            }

            return root.Elements().Select(e => e.Name.LocalName == "disk" ? new Disk(
                Required(e, "device"),
                long.Parse(Required(e, "size"), NumberStyles.None, CultureInfo.InvariantCulture),
                Required(e, "sr"),
                Required(e, "bootable") == "true",
                TypeOf((string?)e.Attribute("type"))) : throw new FormatException(e.Name.LocalName)).ToList();
        }
        catch (Exception ex) when (ex is XmlException or FormatException or OverflowException)
        {
            throw new XenApiException(ErrorCodes.InternalError, $"other_config:{DisksKey} is not a provisioning request: {ex.Message}");
        }
    }

    /// <summary>xapi's string2vdi_type, an unknown type taken as system (as its provisioner does).</summary>
    private static VdiType TypeOf(string? type) => type switch
    {
        "user" => VdiType.User,
        "ephemeral" => VdiType.Ephemeral,
        "suspend" => VdiType.Suspend,
        "crashdump" => VdiType.Crashdump,
        _ => VdiType.System,
    };

    private static string Required(XElement disk, string name) => (string?)disk.Attribute(name) ?? throw new FormatException($"a disk without {name}");

    public async Task ProvisionAsync(ApiRegistry registry, CallContext context, XenObject vm, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentNullException.ThrowIfNull(vm);
        await SetTemplateAsync(vm.Ref, cancellationToken);
        var config = vm.Get(XenApi.VM.OtherConfig);
        if (config.ContainsKey(PostInstallKey))
        {
            // xapi runs only scripts of its own directory in dom0; Corral has none.
            throw new XenApiException(ErrorCodes.PermissionDenied, $"illegal provision script {config[PostInstallKey]}");
        }

        if (config.GetValueOrDefault(DisksKey) is not { } xml)
        {
            return;
        }

        var made = new List<(string Vbd, string Vdi)>();
        try
        {
            foreach (var disk in Parse(xml))
            {
                made.Add(await CreateDiskAsync(registry, context, vm, disk, cancellationToken));
            }

            await database.UpdateAsync([(XenClasses.VM, vm.Ref)], (objs, tx) =>
            {
                var changed = objs[0].Clone();
                changed.Set(XenApi.VM.OtherConfig, changed.Get(XenApi.VM.OtherConfig).Where(kv => kv.Key != DisksKey).ToDictionary(kv => kv.Key, kv => kv.Value));
                tx.Update(changed);
            }, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            await UndoAsync(registry, context, made);
            throw;
        }
    }

    private async Task<(string Vbd, string Vdi)> CreateDiskAsync(ApiRegistry registry, CallContext context, XenObject vm, Disk disk, CancellationToken cancellationToken)
    {
        var sr = await database.FindByUuidAsync(XenClasses.SR, disk.Sr, cancellationToken) ?? throw new XenApiException(ErrorCodes.UuidInvalid, "sr", disk.Sr);
        var vdi = (string)(await Call(registry, "VDI.create", context, new Dictionary<string, object?>
        {
            ["name_label"] = disk.Device,
            ["name_description"] = "Created by template provisioner",
            ["SR"] = sr.Ref,
            ["virtual_size"] = disk.Size,
            ["type"] = XenApi.VDI.Type.Write(disk.Type),
            ["sharable"] = false,
            ["read_only"] = false,
            ["other_config"] = new Dictionary<string, object?>(),
            ["xenstore_data"] = new Dictionary<string, object?>(),
            ["sm_config"] = new Dictionary<string, object?> { ["vmhint"] = vm.Uuid },
            ["tags"] = new List<object?>(),
        }, cancellationToken))!;
        try
        {
            var vbd = (string)(await Call(registry, "VBD.create", context, new Dictionary<string, object?>
            {
                ["VM"] = vm.Ref,
                ["VDI"] = vdi,
                ["userdevice"] = disk.Device,
                ["bootable"] = disk.Bootable,
                ["mode"] = "RW",
                ["type"] = "Disk",
                ["unpluggable"] = disk.Type != VdiType.System,
                ["empty"] = false,
                ["other_config"] = new Dictionary<string, object?> { ["owner"] = "" },
                ["qos_algorithm_type"] = "",
                ["qos_algorithm_params"] = new Dictionary<string, object?>(),
            }, cancellationToken))!;
            return (vbd, vdi);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            await UndoAsync(registry, context, [("", vdi)]);
            throw;
        }
    }

    /// <summary>Removes what a failed provisioning made, each VBD then its VDI; a failure here is logged, the first error stands.</summary>
    private async Task UndoAsync(ApiRegistry registry, CallContext context, IEnumerable<(string Vbd, string Vdi)> made)
    {
        foreach (var (vbd, vdi) in made)
        {
            foreach (var (method, reference) in new[] { ("VBD.destroy", vbd), ("VDI.destroy", vdi) }.Where(m => m.Item2.Length > 0))
            {
                try
                {
                    await Call(registry, method, context, reference, CancellationToken.None);
                }
                catch (Exception ex) when (ex is XenApiException || database.IsUnavailable(ex))
                {
                    logger.LogWarning("Could not remove {Reference} after a failed provisioning: {Reason}", reference, ex.Message);
                }
            }
        }
    }

    private async Task SetTemplateAsync(string vmRef, CancellationToken cancellationToken) =>
        await database.UpdateAsync([(XenClasses.VM, vmRef)], (objs, tx) =>
        {
            if (objs[0].Get(XenApi.VM.IsATemplate))
            {
                var changed = objs[0].Clone();
                changed.Set(XenApi.VM.IsATemplate, false);
                tx.Update(changed);
            }
        }, cancellationToken);

    private static Task<object?> Call(ApiRegistry registry, string method, CallContext context, object? argument, CancellationToken cancellationToken) =>
        (registry.Find(method)?.Handler ?? throw new XenApiException(ErrorCodes.NotImplemented, method))(context with { MethodName = method }, [argument], cancellationToken);
}
