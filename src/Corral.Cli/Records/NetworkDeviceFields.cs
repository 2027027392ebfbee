using Corral.Api.Client;

namespace Corral.Cli.Records;

/// <summary>
/// The parameters of the network classes around PIFs (bonds, VLANs, tunnels, SR-IOV networks, SDN controllers) and of
/// the PVS accelerator's classes, in the order and spelling of xapi's records.ml.
/// </summary>
public static class NetworkDeviceFields
{
    public static IReadOnlyList<XeField> Bond()
    {
        var b = new FieldBuilder("Bond");
        return
        [
            b.Uuid(),
            b.RefUuid("master", "master", "PIF"),
            b.RefsUuids("slaves", "slaves", "PIF", readable: false),
            b.Str("mode", "mode"),
            b.Map("properties", "properties").Rw(b.SetInMap("set_property")),
            b.RefUuid("primary-slave", "primary_slave", "PIF"),
            b.Int("links-up", "links_up"),
            b.Bool("auto-update-mac", "auto_update_mac"),
        ];
    }

    public static IReadOnlyList<XeField> Vlan()
    {
        var b = new FieldBuilder("VLAN");
        return
        [
            b.Uuid(),
            b.RefUuid("tagged-PIF", "tagged_PIF", "PIF"),
            b.RefUuid("untagged-PIF", "untagged_PIF", "PIF"),
            b.Int("tag", "tag"),
        ];
    }

    public static IReadOnlyList<XeField> Tunnel()
    {
        var b = new FieldBuilder("tunnel");
        return
        [
            b.Uuid(),
            b.RefUuid("access-PIF", "access_PIF", "PIF"),
            b.RefUuid("transport-PIF", "transport_PIF", "PIF"),
            b.Map("status", "status", readable: false),
            b.OtherConfig(),
            b.Str("protocol", "protocol"),
        ];
    }

    public static IReadOnlyList<XeField> NetworkSriov()
    {
        var b = new FieldBuilder("network_sriov");
        return
        [
            b.Uuid(),
            b.RefUuid("physical-PIF", "physical_PIF", "PIF"),
            b.RefUuid("logical-PIF", "logical_PIF", "PIF"),
            b.Bool("requires-reboot", "requires_reboot"),
            b.Query("remaining-capacity", async (c, ct) =>
                XeFormat.Int(XenValue.AsLong(await c.Session!.CallAsync("network_sriov.get_remaining_capacity", ct, c.Record.Ref)))).AsExpensive(),
        ];
    }

    public static IReadOnlyList<XeField> SdnController()
    {
        var b = new FieldBuilder("SDN_controller");
        return
        [
            b.Uuid(),
            b.Str("protocol", "protocol"),
            b.Str("address", "address"),
            b.Int("port", "port"),
        ];
    }

    public static IReadOnlyList<XeField> PvsSite()
    {
        var b = new FieldBuilder("PVS_site");
        return
        [
            b.Uuid(),
            b.NameLabel(),
            b.NameDescription(),
            b.Str("pvs-uuid", "PVS_uuid").Rw(b.SetString("PVS_uuid")),
            b.RefsUuids("pvs-cache-storage-uuids", "cache_storage", "PVS_cache_storage"),
            b.RefsUuids("pvs-server-uuids", "servers", "PVS_server"),
            b.RefsUuids("pvs-proxy-uuids", "proxies", "PVS_proxy"),
        ];
    }

    public static IReadOnlyList<XeField> PvsServer()
    {
        var b = new FieldBuilder("PVS_server");
        return
        [
            b.Uuid(),
            b.Strings("addresses", "addresses"),
            b.Int("first-port", "first_port"),
            b.Int("last-port", "last_port"),
            b.RefUuid("pvs-site-uuid", "site", "PVS_site"),
        ];
    }

    public static IReadOnlyList<XeField> PvsProxy()
    {
        var b = new FieldBuilder("PVS_proxy");
        return
        [
            b.Uuid(),
            b.RefUuid("pvs-site-uuid", "site", "PVS_site"),
            b.RefUuid("vif-uuid", "VIF", "VIF"),
            b.Bool("currently-attached", "currently_attached"),
            b.Enum("status", "status", XeFormat.PvsProxyStatus),
        ];
    }

    public static IReadOnlyList<XeField> PvsCacheStorage()
    {
        var b = new FieldBuilder("PVS_cache_storage");
        return
        [
            b.Uuid(),
            b.RefUuid("host-uuid", "host", "host"),
            b.RefUuid("sr-uuid", "SR", "SR"),
            b.RefUuid("pvs-site-uuid", "site", "PVS_site"),
            b.Int("size", "size"),
            b.RefUuid("vdi-uuid", "VDI", "VDI"),
        ];
    }
}
