using System.Globalization;
using System.Text;
using Corral.Api.Client;

namespace Corral.Cli.Records;

/// <summary>
/// The parameters of a host's devices and what hangs off them (CPUs, crash dumps, PCI devices, GPUs, USB devices,
/// features, certificates, drivers), in the order and spelling of xapi's records.ml.
/// </summary>
public static class HostDeviceFields
{
    private const string Pci = "PCI";

    public static IReadOnlyList<XeField> HostCpu()
    {
        var b = new FieldBuilder("host_cpu");
        return
        [
            b.Uuid(),
            b.RefUuid("host-uuid", "host", "host"),
            b.Int("number", "number"),
            b.Str("vendor", "vendor"),
            b.Int("speed", "speed"),
            b.Int("model", "model"),
            b.Int("family", "family"),
            b.Str("modelname", "modelname"),
            b.Str("stepping", "stepping"),
            b.Str("flags", "flags"),
            b.Query("utilisation", async (c, ct) =>
            {
                var dataSource = "cpu" + XeFormat.Int(c.Record.Long("number"));
                return XeFormat.Float(XenValue.AsDouble(await c.Session!.CallAsync("host.query_data_source", ct, c.Record.Str("host"), dataSource)));
            }, "host", "number").AsExpensive(),
        ];
    }

    public static IReadOnlyList<XeField> HostCrashdump()
    {
        var b = new FieldBuilder("host_crashdump");
        return
        [
            b.Uuid(),
            b.RefUuid("host-uuid", "host", "host"),
            b.Date("timestamp", "timestamp"),
            b.Int("size", "size"),
        ];
    }

    public static IReadOnlyList<XeField> PciDevice()
    {
        var b = new FieldBuilder(Pci);
        return
        [
            b.Uuid(),
            b.Str("vendor-name", "vendor_name"),
            b.Str("device-name", "device_name"),
            b.Str("driver-name", "driver_name"),
            b.RefUuid("host-uuid", "host", "host"),
            b.RefName("host-name-label", "host", "host"),
            b.Str("pci-id", "pci_id"),
            Dependencies(b, c => c.Record, ["dependencies"]),
            b.OtherConfig(),
        ];
    }

    /// <summary>
    /// A PCI device's dependencies, as their PCI ids; &lt;invalid reference&gt; when one is gone, as xe prints a record it
    /// cannot read.
    /// </summary>
    private static XeField Dependencies(FieldBuilder b, Func<FieldContext, XenRecord?> pci, IReadOnlyList<string> requires)
    {
        IReadOnlyList<string>? Ids(FieldContext c)
        {
            var device = pci(c);
            var ids = device?.Strings("dependencies").Select(d => c.Cache.Find(Pci, d)?.Str("pci_id")).ToList();
            return ids is null || ids.Any(i => i is null) ? null : ids.Select(i => i!).ToList();
        }

        return b.Computed("dependencies", c => Ids(c) is { } ids ? XeFormat.Set(ids) : "<invalid reference>", requires, new ClassNeed(Pci))
                   .AsSet(c => Ids(c) ?? []) with
               {
                   Requires = [.. requires.Select(r => (b.ApiClass, r)), (Pci, "dependencies"), (Pci, "pci_id")],
               };
    }

    public static IReadOnlyList<XeField> Pgpu()
    {
        var b = new FieldBuilder("PGPU");
        return
        [
            b.Uuid(),
            b.Related("pci-uuid", Pci, Pci, "uuid", p => p.Str("uuid")),
            b.Related("vendor-name", Pci, Pci, "vendor_name", p => p.Str("vendor_name")),
            b.Related("device-name", Pci, Pci, "device_name", p => p.Str("device_name")),
            b.Str("dom0-access", "dom0_access"),
            b.Bool("is-system-display-device", "is_system_display_device"),
            b.RefUuid("gpu-group-uuid", "GPU_group", "GPU_group").Rw(b.SetRef("GPU_group", "GPU_group", emptyIsNull: false)),
            b.RefName("gpu-group-name-label", "GPU_group", "GPU_group"),
            b.RefUuid("host-uuid", "host", "host"),
            b.RefName("host-name-label", "host", "host"),
            b.Related("pci-id", Pci, Pci, "pci_id", p => p.Str("pci_id")),
            Dependencies(b, c => c.Cache.Find(Pci, c.Record.Str(Pci)), [Pci]),
            b.OtherConfig(),
            b.RefsUuids("supported-VGPU-types", "supported_VGPU_types", "VGPU_type", readable: false),
            b.RefsUuids("enabled-VGPU-types", "enabled_VGPU_types", "VGPU_type")
                .Rw(b.SetRw("enabled_VGPU_types", FieldBuilder.RefByUuid("VGPU_type")))
                .Rw(b.SetRefs("enabled_VGPU_types", "VGPU_type")),
            b.RefsUuids("resident-VGPUs", "resident_VGPUs", "VGPU", readable: false),
        ];
    }

    public static IReadOnlyList<XeField> GpuGroup()
    {
        var b = new FieldBuilder("GPU_group");
        return
        [
            b.Uuid(),
            b.NameLabel(),
            b.NameDescription(),
            b.RefsUuids("VGPU-uuids", "VGPUs", "VGPU"),
            b.RefsUuids("PGPU-uuids", "PGPUs", "PGPU"),
            b.OtherConfig(),
            b.RefsUuids("enabled-VGPU-types", "enabled_VGPU_types", "VGPU_type", readable: false),
            b.RefsUuids("supported-VGPU-types", "supported_VGPU_types", "VGPU_type", readable: false),
            b.Enum("allocation-algorithm", "allocation_algorithm", XeFormat.AllocationAlgorithm)
                .Rw(b.SetParsed("allocation_algorithm", XeValues.ParseAllocationAlgorithm)),
        ];
    }

    public static IReadOnlyList<XeField> Vgpu()
    {
        var b = new FieldBuilder("VGPU");
        return
        [
            b.Uuid(),
            b.RefUuid("vm-uuid", "VM", "VM"),
            b.RefName("vm-name-label", "VM", "VM"),
            b.Str("device", "device"),
            b.RefUuid("gpu-group-uuid", "GPU_group", "GPU_group"),
            b.RefName("gpu-group-name-label", "GPU_group", "GPU_group"),
            b.Bool("currently-attached", "currently_attached"),
            b.OtherConfig(),
            b.RefUuid("type-uuid", "type", "VGPU_type"),
            b.Related("type-model-name", "type", "VGPU_type", "model_name", t => t.Str("model_name")),
            b.RefUuid("resident-on", "resident_on", "PGPU"),
            b.Computed("compatibility-metadata", c => XeFormat.Set(c.Record.Map("compatibility_metadata")
                .Select(kv => $"{kv.Key}:({Encoding.UTF8.GetByteCount(kv.Value)} bytes)")), ["compatibility_metadata"]),
            b.Str("extra_args", "extra_args").Rw(b.SetString("extra_args")),
            b.Related("pci", Pci, Pci, "pci_id", p => p.Str("pci_id")),
        ];
    }

    public static IReadOnlyList<XeField> VgpuType()
    {
        var b = new FieldBuilder("VGPU_type");
        return
        [
            b.Uuid(),
            b.Str("vendor-name", "vendor_name"),
            b.Str("model-name", "model_name"),
            b.Int("framebuffer-size", "framebuffer_size"),
            b.Int("max-heads", "max_heads"),
            b.Computed("max-resolution", c => $"{XeFormat.Int(c.Record.Long("max_resolution_x"))}x{XeFormat.Int(c.Record.Long("max_resolution_y"))}",
                ["max_resolution_x", "max_resolution_y"]),
            b.RefsUuids("supported-on-PGPUs", "supported_on_PGPUs", "PGPU", readable: false),
            b.RefsUuids("enabled-on-PGPUs", "enabled_on_PGPUs", "PGPU", readable: false),
            b.RefsUuids("supported-on-GPU-groups", "supported_on_GPU_groups", "GPU_group", readable: false),
            b.RefsUuids("enabled-on-GPU-groups", "enabled_on_GPU_groups", "GPU_group", readable: false),
            b.RefsUuids("VGPU-uuids", "VGPUs", "VGPU", readable: false),
            b.Bool("experimental", "experimental"),
            b.RefsUuids("compatible-types-in-vm", "compatible_types_in_vm", "VGPU_type", readable: false),
        ];
    }

    public static IReadOnlyList<XeField> Pusb()
    {
        var b = new FieldBuilder("PUSB");
        return
        [
            b.Uuid(),
            b.RefUuid("usb-group-uuid", "USB_group", "USB_group"),
            b.RefUuid("host-uuid", "host", "host"),
            b.RefName("host-name-label", "host", "host"),
            b.Str("path", "path"),
            b.Str("vendor-id", "vendor_id"),
            b.Str("vendor-desc", "vendor_desc"),
            b.Str("product-id", "product_id"),
            b.Str("product-desc", "product_desc"),
            b.Str("serial", "serial"),
            b.Str("version", "version"),
            b.Str("description", "description"),
            b.Float("speed", "speed"),
            b.Bool("passthrough-enabled", "passthrough_enabled").Rw(b.SetBool("passthrough_enabled", "passthrough-enabled")),
        ];
    }

    public static IReadOnlyList<XeField> UsbGroup()
    {
        var b = new FieldBuilder("USB_group");
        return
        [
            b.Uuid(),
            b.NameLabel(),
            b.NameDescription(),
            b.RefsUuids("VUSB-uuids", "VUSBs", "VUSB"),
            b.RefsUuids("PUSB-uuids", "PUSBs", "PUSB"),
            b.OtherConfig(),
        ];
    }

    public static IReadOnlyList<XeField> Vusb()
    {
        var b = new FieldBuilder("VUSB");
        return
        [
            b.Uuid(),
            b.RefUuid("vm-uuid", "VM", "VM"),
            b.RefName("vm-name-label", "VM", "VM"),
            b.RefUuid("usb-group-uuid", "USB_group", "USB_group"),
            b.RefName("usb-group-name-label", "USB_group", "USB_group"),
            b.OtherConfig(),
            b.Bool("currently-attached", "currently_attached"),
            b.AllowedOperations(),
            b.CurrentOperations(),
        ];
    }

    public static IReadOnlyList<XeField> Feature()
    {
        var b = new FieldBuilder("Feature");
        return
        [
            b.Uuid(),
            b.NameLabel(settable: false),
            b.NameDescription(settable: false),
            b.Bool("enabled", "enabled"),
            b.Bool("experimental", "experimental"),
            b.Str("version", "version"),
            b.RefUuid("host-uuid", "host", "host"),
        ];
    }

    public static IReadOnlyList<XeField> Certificate()
    {
        var b = new FieldBuilder("Certificate");
        return
        [
            b.Uuid(),
            b.Str("type", "type"),
            b.Str("name", "name"),
            b.RefUuid("host", "host", "host"),
            b.Date("not-before", "not_before"),
            b.Date("not-after", "not_after"),
            b.Str("fingerprint", "fingerprint"),
            b.Str("fingerprint_sha256", "fingerprint_sha256"),
            b.Str("fingerprint_sha1", "fingerprint_sha1"),
            b.Strings("purpose", "purpose", readable: false),
        ];
    }

    private const string Driver = "Host_driver";
    private const string Variant = "Driver_variant";

    /// <summary>A host driver's variants, highest priority first (the order of equal priorities kept).</summary>
    private static List<XenRecord> Variants(FieldContext c) =>
        c.Record.Strings("variants").Select(r => c.Cache.Find(Variant, r)).OfType<XenRecord>()
            .OrderByDescending(v => v.Double("priority")).ToList();

    private static string VariantName(FieldContext c, string key) =>
        Variants(c).FirstOrDefault(v => v.Ref == c.Record.Str(key))?.Str("name") ?? "<none>";

    public static IReadOnlyList<XeField> HostDriver()
    {
        var b = new FieldBuilder(Driver);
        var variants = new ClassNeed(Variant, "variants");
        return
        [
            b.Uuid(),
            b.Str("name", "name"),
            b.Str("type", "type"),
            b.Str("description", "description"),
            b.Str("info", "info"),
            b.RefUuid("host-uuid", "host", "host"),
            b.Computed("active-variant", c => VariantName(c, "active_variant"), ["active_variant", "variants"], variants),
            b.Computed("selected-variant", c => VariantName(c, "selected_variant"), ["selected_variant", "variants"], variants),
            b.Computed("variants", c => XeFormat.Set(Variants(c).Select(v => $"{v.Str("name")}/{v.Str("version")}")), ["variants"], variants),
            b.Computed("variants-dev-status", c => XeFormat.Set(Variants(c).Select(v => $"{v.Str("name")}={v.Str("status")}")), ["variants"], variants),
            b.Computed("variants-uuid", c => XeFormat.Set(Variants(c).Select(v => $"{v.Str("name")}/{v.Uuid}")), ["variants"], variants),
            b.Computed("variants-hw-present", c => XeFormat.Set(Variants(c).Where(v => v.Bool("hardware_present")).Select(v => v.Str("name"))),
                ["variants"], variants),
        ];
    }

    /// <summary>Whether the variant is its driver's active (or selected) one.</summary>
    private static XeField IsDriverVariant(FieldBuilder b, string name, string driverKey) =>
        b.Computed(name, c => c.Cache.Find(Driver, c.Record.Str("driver")) is { } d ? XeFormat.Bool(d.Str(driverKey) == c.Record.Ref) : "<invalid reference>",
            [], new ClassNeed(Driver, "driver")) with { Requires = [(Variant, "driver"), (Driver, driverKey)] };

    public static IReadOnlyList<XeField> DriverVariant()
    {
        var b = new FieldBuilder(Variant);
        var driver = new ClassNeed(Driver, "driver");
        return
        [
            b.Uuid(),
            b.Str("name", "name"),
            b.Str("version", "version"),
            b.Str("status", "status"),
            b.Computed("priority", c => c.Record.Double("priority").ToString("F1", CultureInfo.InvariantCulture).PadLeft(5), ["priority"]),
            IsDriverVariant(b, "active", "active_variant"),
            IsDriverVariant(b, "selected", "selected_variant"),
            b.RefUuid("driver-uuid", "driver", Driver),
            b.Related("driver-name", "driver", Driver, "name", d => d.Str("name"), none: "<invalid reference>"),
            b.Computed("host-uuid", c => c.Cache.UuidOf("host", c.Cache.Find(Driver, c.Record.Str("driver"))?.Str("host")), ["driver"], driver, new ClassNeed("host"))
                with { Requires = [(Variant, "driver"), (Driver, "host")] },
            b.Bool("hw-present", "hardware_present"),
        ];
    }
}
