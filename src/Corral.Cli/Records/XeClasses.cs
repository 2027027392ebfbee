namespace Corral.Cli.Records;

/// <summary>
/// The xe object classes (cli_operations.ml <c>gen_cmds</c>), each with xe's default list parameters and filters, as
/// xapi spells them: a default parameter that is no field of the class (snapshot's <c>snapshot_of</c>) is not shown,
/// as in xe.
/// </summary>
public static class XeClasses
{
    private static readonly Lazy<IReadOnlyList<XeClass>> DefinedClasses = new(Build);
    private static readonly Lazy<IReadOnlyList<XeClass>> OfferedClasses = new(() => Defined.Where(c => c.IsOffered).ToList());

    /// <summary>Every class xe has.</summary>
    public static IReadOnlyList<XeClass> Defined => DefinedClasses.Value;

    /// <summary>The classes whose XenAPI class Corral's object model has: the ones the CLI offers commands for.</summary>
    public static IReadOnlyList<XeClass> All => OfferedClasses.Value;

    public static XeClass? Find(string name) => All.FirstOrDefault(c => c.Name == name);

    public static XeClass Get(string name) => Find(name) ?? throw new KeyNotFoundException($"no xe class {name}");

    private static IReadOnlyList<XeClass> Build()
    {
        var vmFields = VmFields.Create();
        string[] nameAndDescription = ["uuid", "name-label", "name-description"];
        return
        [
            new("pool", "pool", HostPoolFields.Pool(), ["uuid", "name-label", "name-description", "master", "default-SR"]),
            new("pif", "PIF", NetworkFields.Pif(), ["uuid", "device", "VLAN", "MAC", "network-uuid", "currently-attached", "host-uuid"]),
            new("bond", "Bond", NetworkDeviceFields.Bond(), ["uuid", "master", "slaves"]),
            new("vlan", "VLAN", NetworkDeviceFields.Vlan(), ["uuid", "tagged-PIF", "untagged-PIF", "tag"]),
            new("tunnel", "tunnel", NetworkDeviceFields.Tunnel(), ["uuid", "transport-PIF", "access-PIF", "status"]),
            new("vif", "VIF", NetworkFields.Vif(), ["uuid", "device", "vm-uuid", "network-uuid"]),
            new("network", "network", NetworkFields.Network(), ["uuid", "name-label", "name-description", "bridge"], standardList: true),
            new("console", "console", NetworkFields.Console(), ["uuid", "vm-uuid", "vm-name-label", "protocol", "location"]),
            new("vm", "VM", vmFields, ["name-label", "uuid", "power-state"], [new("is-a-template", "false")], standardList: true),
            new("template", "VM", vmFields, ["name-label", "name-description", "uuid"], [new("is-a-template", "true"), new("is-a-snapshot", "false")]),
            new("snapshot", "VM", vmFields, ["name-label", "name-description", "uuid", "snapshot_of", "snapshot_time", "is-vmss-snapshot"],
                [new("is-a-snapshot", "true")]),
            new("host", "host", HostPoolFields.Host(), nameAndDescription),
            new("host-cpu", "host_cpu", HostDeviceFields.HostCpu(), ["uuid", "number", "vendor", "speed", "utilisation"]),
            new("host-crashdump", "host_crashdump", HostDeviceFields.HostCrashdump(), ["uuid", "host", "timestamp", "size"]),
            new("patch", "pool_patch", PoolServiceFields.PoolPatch(), ["uuid", "name-label", "name-description", "size", "hosts", "after-apply-guidance"]),
            new("update", "pool_update", PoolServiceFields.PoolUpdate(),
                ["uuid", "name-label", "name-description", "version", "installation-size", "hosts", "after-apply-guidance"]),
            new("vdi", "VDI", StorageFields.Vdi(), ["uuid", "name-label", "name-description", "virtual-size", "read-only", "sharable", "sr-uuid"]),
            new("vbd", "VBD", StorageFields.Vbd(), ["uuid", "vm-uuid", "vm-name-label", "vdi-uuid", "device", "empty"]),
            new("sr", "SR", StorageFields.Sr(), ["uuid", "name-label", "name-description", "host", "type", "content-type"], standardList: true),
            new("sm", "SM", PoolServiceFields.Sm(), ["uuid", "type", "name-label", "name-description", "vendor", "copyright", "configuration"]),
            new("pbd", "PBD", StorageFields.Pbd(), ["uuid", "host-uuid", "sr-uuid", "device-config", "currently-attached"]),
            new("task", "task", NetworkFields.Task(), ["uuid", "name-label", "name-description", "status", "progress"]),
            new("subject", "subject", AccessFields.Subject(), ["uuid", "subject-identifier", "other-config", "roles"]),
            new("role", "role", AccessFields.Role(), ["uuid", "name", "description", "subroles"], listed: AccessFields.IsListedRole),
            new("vmss", "VMSS", PoolServiceFields.Vmss(),
                ["uuid", "name-label", "name-description", "enabled", "type", "retained-snapshots", "frequency", "schedule", "last-run-time", "VMs"]),
            new("message", "message", AccessFields.Message(), []),
            new("secret", "secret", AccessFields.Secret(), []),
            new("appliance", "VM_appliance", PoolServiceFields.VmAppliance(), []),
            new("vm-group", "VM_group", PoolServiceFields.VmGroup(), ["uuid", "name-label", "name-description", "placement", "vm-uuids"]),
            new("pgpu", "PGPU", HostDeviceFields.Pgpu(), ["uuid", "pci-uuid", "vendor-name", "device-name", "gpu-group-uuid"]),
            new("gpu-group", "GPU_group", HostDeviceFields.GpuGroup(), nameAndDescription),
            new("vgpu", "VGPU", HostDeviceFields.Vgpu(), ["uuid", "vm-uuid", "device", "gpu-group-uuid"]),
            new("vgpu-type", "VGPU_type", HostDeviceFields.VgpuType(), ["uuid", "vendor-name", "model-name", "max-resolution", "max-heads"]),
            new("drtask", "DR_task", PoolServiceFields.DrTask(), []),
            new("pvs-site", "PVS_site", NetworkDeviceFields.PvsSite(), ["uuid", "name-label", "name-description", "pvs-uuid", "pvs-server-uuids"]),
            new("pvs-server", "PVS_server", NetworkDeviceFields.PvsServer(), ["uuid", "addresses", "pvs-site-uuid"]),
            new("pvs-proxy", "PVS_proxy", NetworkDeviceFields.PvsProxy(), ["uuid", "vif-uuid", "pvs-site-uuid", "currently-attached", "cache-sr-uuid"]),
            new("pvs-cache-storage", "PVS_cache_storage", NetworkDeviceFields.PvsCacheStorage(), ["uuid", "host-uuid", "sr-uuid", "pvs-site-uuid", "size"]),
            new("feature", "Feature", HostDeviceFields.Feature(),
                ["uuid", "name-label", "name-description", "enabled", "experimental", "version", "host-uuid"]),
            new("sdn-controller", "SDN_controller", NetworkDeviceFields.SdnController(), ["uuid", "protocol", "address", "port"]),
            new("pusb", "PUSB", HostDeviceFields.Pusb(),
                ["uuid", "path", "product-id", "product-desc", "vendor-id", "vendor-desc", "serial", "version", "description", "speed"]),
            new("usb-group", "USB_group", HostDeviceFields.UsbGroup(), nameAndDescription),
            new("vusb", "VUSB", HostDeviceFields.Vusb(), ["uuid", "vm-uuid", "usb-group-uuid"]),
            new("network-sriov", "network_sriov", NetworkDeviceFields.NetworkSriov(),
                ["uuid", "physical-pif", "logical-pif", "requires-reboot", "configuration-mode"]),
            new("cluster", "Cluster", PoolServiceFields.Cluster(),
                ["uuid", "cluster-hosts", "cluster-token", "cluster-stack", "allowed-operations", "current-operations", "pool-auto-join", "cluster-config", "other-config"]),
            new("cluster-host", "Cluster_host", PoolServiceFields.ClusterHost(),
                ["uuid", "cluster", "pif", "host", "enabled", "allowed-operations", "current-operations", "other-config"]),
            new("certificate", "Certificate", HostDeviceFields.Certificate(),
                ["uuid", "type", "name", "host", "not-before", "not-after", "fingerprint", "purpose"]),
            new("repository", "Repository", PoolServiceFields.Repository(),
                ["uuid", "name-label", "name-description", "binary-url", "source-url", "update", "hash", "up-to-date", "gpgkey-path", "origin"]),
            new("hostdriver-variant", "Driver_variant", HostDeviceFields.DriverVariant(),
                ["uuid", "driver-name", "name", "version", "priority", "host-uuid", "driver-uuid", "active", "selected", "status", "hw-present"]),
            new("hostdriver", "Host_driver", HostDeviceFields.HostDriver(),
                ["uuid", "name", "host-uuid", "active-variant", "selected-variant", "variants", "variants-uuid"]),
            new("vtpm", "VTPM", PoolServiceFields.Vtpm(), ["uuid", "vm-uuid", "profile"]),
            new("observer", "Observer", PoolServiceFields.Observer(), ["uuid", "name-label", "name-description", "host-uuids", "endpoints", "enabled"]),
            new("pci", "PCI", HostDeviceFields.PciDevice(), ["uuid", "vendor-name", "device-name", "pci-id"]),
            new("caller", "Caller", AccessFields.Caller(),
                ["uuid", "name-label", "name-description", "user-agent", "client-ip", "last-access", "groups", "rate-limit"]),
            new("rate-limit", "Rate_limit", AccessFields.RateLimit(), ["uuid", "name-label", "callers", "burst-size", "fill-rate"]),
        ];
    }
}
