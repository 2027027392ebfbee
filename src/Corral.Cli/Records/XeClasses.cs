namespace Corral.Cli.Records;

/// <summary>
/// The xe object classes the CLI knows, with xe's default list parameters (cli_operations.ml <c>gen_cmds</c>).
/// </summary>
public static class XeClasses
{
    private static readonly Lazy<IReadOnlyList<XeClass>> AllClasses = new(Build);

    public static IReadOnlyList<XeClass> All => AllClasses.Value;

    public static XeClass? Find(string name) => All.FirstOrDefault(c => c.Name == name);

    public static XeClass Get(string name) => Find(name) ?? throw new KeyNotFoundException($"no xe class {name}");

    private static IReadOnlyList<XeClass> Build()
    {
        var vmFields = VmFields.Create();
        return
        [
            new("pool", "pool", HostPoolFields.Pool(), ["uuid", "name-label", "name-description", "master", "default-SR"]),
            new("pif", "PIF", NetworkFields.Pif(), ["uuid", "device", "VLAN", "MAC", "network-uuid", "currently-attached", "host-uuid"]),
            new("vif", "VIF", NetworkFields.Vif(), ["uuid", "device", "vm-uuid", "network-uuid"]),
            new("network", "network", NetworkFields.Network(), ["uuid", "name-label", "name-description", "bridge"], standardList: true),
            new("vm", "VM", vmFields, ["name-label", "uuid", "power-state"], [new("is-a-template", "false")], standardList: true),
            new("template", "VM", vmFields, ["name-label", "name-description", "uuid"], [new("is-a-template", "true"), new("is-a-snapshot", "false")]),
            new("host", "host", HostPoolFields.Host(), ["uuid", "name-label", "name-description"]),
            new("vdi", "VDI", StorageFields.Vdi(), ["uuid", "name-label", "name-description", "virtual-size", "read-only", "sharable", "sr-uuid"]),
            new("vbd", "VBD", StorageFields.Vbd(), ["uuid", "vm-uuid", "vm-name-label", "vdi-uuid", "device", "empty"]),
            new("sr", "SR", StorageFields.Sr(), ["uuid", "name-label", "name-description", "host", "type", "content-type"], standardList: true),
            new("pbd", "PBD", StorageFields.Pbd(), ["uuid", "host-uuid", "sr-uuid", "device-config", "currently-attached"]),
            new("task", "task", NetworkFields.Task(), ["uuid", "name-label", "name-description", "status", "progress"]),
            new("console", "console", NetworkFields.Console(), ["uuid", "vm-uuid", "vm-name-label", "protocol", "location"]),
        ];
    }
}
