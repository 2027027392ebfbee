using Corral.Model;

namespace Corral.Cli.Records;

/// <summary>The parameters of SRs, VDIs, VBDs and PBDs, in the order and spelling of xapi's records.ml.</summary>
public static class StorageFields
{
    public static IReadOnlyList<XeField> Sr()
    {
        var b = new FieldBuilder("SR");
        return
        [
            b.Str("uuid", "uuid"),
            b.Str("name-label", "name_label").Rw(b.SetString("name_label")),
            b.Str("name-description", "name_description").Rw(b.SetString("name_description")),
            b.Computed("host", SrHost, ["PBDs"], new ClassNeed("PBD", "PBDs"), new ClassNeed("host")),
            b.AllowedOperations(XeFormat.SrOperation),
            b.CurrentOperations(XeFormat.SrOperation),
            b.RefsUuids("VDIs", "VDIs", "VDI"),
            b.RefsUuids("PBDs", "PBDs", "PBD"),
            b.Int("virtual-allocation", "virtual_allocation"),
            b.Int("physical-utilisation", "physical_utilisation"),
            b.Int("physical-size", "physical_size"),
            b.Str("type", "type"),
            b.Str("content-type", "content_type"),
            b.Bool("shared", "shared").Rw(b.SetBool("shared", "shared")),
            b.RefUuid("introduced-by", "introduced_by", "DR_task"),
            b.Bool("is-tools-sr", "is_tools_sr"),
            b.Map("other-config", "other_config").Rw(b.MapRw("other_config")),
            b.Map("sm-config", "sm_config"),
            b.RefMapUuids("blobs", "blobs", "blob"),
            b.Bool("local-cache-enabled", "local_cache_enabled"),
            b.Strings("tags", "tags", ", ").Rw(b.SetRw("tags")),
            b.Bool("clustered", "clustered"),
        ];
    }

    /// <summary>
    /// xe's SR <c>host</c>: &lt;shared&gt; when plugged on several hosts, else the name of the host of its one PBD.
    /// </summary>
    private static string SrHost(FieldContext c)
    {
        var pbds = c.Record.Strings("PBDs");
        if (pbds.Count > 1)
        {
            return "<shared>";
        }

        var host = pbds.Count == 1 ? c.Cache.Find("PBD", pbds[0])?.Str("host") : null;
        return c.Cache.NameOf("host", host);
    }

    public static IReadOnlyList<XeField> Vdi()
    {
        var b = new FieldBuilder("VDI");
        return
        [
            b.Str("uuid", "uuid"),
            b.Str("name-label", "name_label").Rw(b.SetString("name_label")),
            b.Str("name-description", "name_description").Rw(b.SetString("name_description")),
            b.Bool("is-a-snapshot", "is_a_snapshot"),
            b.RefUuid("snapshot-of", "snapshot_of", "VDI"),
            b.RefsUuids("snapshots", "snapshots", "VDI", readable: false),
            b.Date("snapshot-time", "snapshot_time"),
            b.Strings("allowed-operations", "allowed_operations"),
            b.MapValues("current-operations", "current_operations", s => s),
            b.RefUuid("sr-uuid", "SR", "SR"),
            b.RefName("sr-name-label", "SR", "SR"),
            b.RefsUuids("vbd-uuids", "VBDs", "VBD"),
            b.RefsUuids("crashdump-uuids", "crash_dumps", "crashdump"),
            b.Int("virtual-size", "virtual_size"),
            b.Int("physical-utilisation", "physical_utilisation"),
            b.Str("location", "location"),
            b.Enum("type", "type", XeFormat.VdiType),
            b.Bool("sharable", "sharable"),
            b.Bool("read-only", "read_only"),
            b.Bool("storage-lock", "storage_lock"),
            b.Bool("managed", "managed"),
            b.RefUuid("parent", "parent", "VDI").AsDeprecated(),
            b.Bool("missing", "missing"),
            b.Bool("is-tools-iso", "is_tools_iso"),
            b.Map("other-config", "other_config").Rw(b.MapRw("other_config")),
            b.Map("xenstore-data", "xenstore_data").Clearable(b.ClearMap("xenstore_data")),
            b.Map("sm-config", "sm_config"),
            b.Str("on-boot", "on_boot").Rw(b.SetEnum("on_boot", XenEnumTypes.OnBoot)),
            b.Bool("allow-caching", "allow_caching").Rw(b.SetPlainBool("allow_caching", "allow-caching")),
            b.Bool("metadata-latest", "metadata_latest"),
            b.RefUuid("metadata-of-pool", "metadata_of_pool", "pool"),
            b.Strings("tags", "tags", ", ").Rw(b.SetRw("tags")),
            b.Bool("cbt-enabled", "cbt_enabled"),
        ];
    }

    public static IReadOnlyList<XeField> Vbd()
    {
        var b = new FieldBuilder("VBD");
        return
        [
            b.Str("uuid", "uuid"),
            b.RefUuid("vm-uuid", "VM", "VM"),
            b.RefName("vm-name-label", "VM", "VM"),
            b.RefUuid("vdi-uuid", "VDI", "VDI"),
            b.Computed("vdi-name-label", c => c.Record.Bool("empty") ? "<EMPTY>" : c.Cache.NameOf("VDI", c.Record.Str("VDI")), ["VDI", "empty"], new ClassNeed("VDI", "VDI")),
            b.Strings("allowed-operations", "allowed_operations"),
            b.MapValues("current-operations", "current_operations", s => s),
            b.Bool("empty", "empty"),
            b.Str("device", "device"),
            b.Str("userdevice", "userdevice").Rw(b.SetString("userdevice")),
            b.Bool("bootable", "bootable").Rw(b.SetBool("bootable", "bootable")),
            b.Str("mode", "mode").Rw(b.SetEnum("mode", XenEnumTypes.VbdMode)),
            b.Str("type", "type").Rw(b.SetEnum("type", XenEnumTypes.VbdType)),
            b.Bool("unpluggable", "unpluggable").Rw(b.SetBool("unpluggable", "unpluggable")),
            b.Bool("currently-attached", "currently_attached"),
            b.Call("attachable", async (c, ct) =>
            {
                if (c.Session is null)
                {
                    return null;
                }

                try
                {
                    await c.Session.CallAsync("VBD.assert_attachable", ct, c.Record.Ref);
                    return "true";
                }
                catch (Corral.Model.XenApiException ex) when (!XeField.IsUnoffered(ex))
                {
                    return $"false (error: {ex.Code}: [ {string.Join("; ", ex.Parameters)} ])";
                }
            }).AsExpensive(),
            b.Bool("storage-lock", "storage_lock"),
            b.Int("status-code", "status_code"),
            b.Str("status-detail", "status_detail"),
            b.Str("qos_algorithm_type", "qos_algorithm_type").Rw(b.SetString("qos_algorithm_type")),
            b.Map("qos_algorithm_params", "qos_algorithm_params").Rw(b.MapRw("qos_algorithm_params")),
            b.Strings("qos_supported_algorithms", "qos_supported_algorithms"),
            b.Map("other-config", "other_config").Rw(b.MapRw("other_config")),
            b.DataSourceKbs("io_read_kbs", "VM.query_data_source", "VM", r => $"vbd_{r.Str("device")}_read"),
            b.DataSourceKbs("io_write_kbs", "VM.query_data_source", "VM", r => $"vbd_{r.Str("device")}_write"),
        ];
    }

    public static IReadOnlyList<XeField> Pbd()
    {
        var b = new FieldBuilder("PBD");
        return
        [
            b.Str("uuid", "uuid"),
            b.RefUuid("host", "host", "host").AsDeprecated(),
            b.RefUuid("host-uuid", "host", "host"),
            b.RefName("host-name-label", "host", "host"),
            b.RefUuid("sr-uuid", "SR", "SR"),
            b.RefName("sr-name-label", "SR", "SR"),
            b.Map("device-config", "device_config"),
            b.Bool("currently-attached", "currently_attached"),
            b.Map("other-config", "other_config").Rw(b.MapRw("other_config")),
        ];
    }
}
