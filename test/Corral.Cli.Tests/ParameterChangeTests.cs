using Corral.Cli.Records;
using Corral.Model;

namespace Corral.Cli.Tests;

/// <summary>param-set, -add, -remove, -clear and -get on the classes xe has, and the values that take a call.</summary>
public class ParameterChangeTests
{
    private const string Uuid = "0b7e5c52-0000-4000-8000-000000000001";
    private const string Self = "OpaqueRef:object";

    /// <summary>A pool with one object of the xe class (datamodel defaults, then <paramref name="fields"/>).</summary>
    private static CannedPool PoolWith(string xeClass, params (string Key, object? Value)[] fields)
    {
        var apiClass = XeClasses.Get(xeClass).ApiClass;
        var record = XenClasses.Get(apiClass).Fields.ToDictionary(f => f.Name, f => f.NewDefault() is DateTime dt ? XenDateTime.Format(dt) : f.NewDefault());
        record["uuid"] = Uuid;
        foreach (var (key, value) in fields)
        {
            record[key] = value;
        }

        return new CannedPool().Add(apiClass, Self, record);
    }

    [Theory]
    [InlineData("snapshot", "name-label=nightly", "VM.set_name_label", "nightly")]
    [InlineData("bond", "properties:mac=yes", "Bond.set_property", "mac, yes")]
    [InlineData("pif", "properties:gro=on", "PIF.set_property", "gro, on")]
    [InlineData("tunnel", "other-config:k=v", "tunnel.add_to_other_config", "k, v")]
    [InlineData("vmss", "type=Checkpoint", "VMSS.set_type", "checkpoint")]
    [InlineData("vmss", "retained-snapshots=7", "VMSS.set_retained_snapshots", "7")]
    [InlineData("vmss", "frequency=weekly", "VMSS.set_frequency", "weekly")]
    [InlineData("vmss", "schedule:hour=3", "VMSS.add_to_schedule", "hour, 3")]
    [InlineData("secret", "value=s3cret", "secret.set_value", "s3cret")]
    [InlineData("appliance", "name-description=web tier", "VM_appliance.set_name_description", "web tier")]
    [InlineData("gpu-group", "allocation-algorithm=Depth-First", "GPU_group.set_allocation_algorithm", "depth_first")]
    [InlineData("vgpu", "extra_args=-x", "VGPU.set_extra_args", "-x")]
    [InlineData("pvs-site", "pvs-uuid=farm", "PVS_site.set_PVS_uuid", "farm")]
    [InlineData("pusb", "passthrough-enabled=false", "PUSB.set_passthrough_enabled", "false")]
    [InlineData("usb-group", "name-label=keys", "USB_group.set_name_label", "keys")]
    [InlineData("vusb", "other-config:k=v", "VUSB.add_to_other_config", "k, v")]
    [InlineData("cluster", "other-config:k=v", "Cluster.add_to_other_config", "k, v")]
    [InlineData("repository", "gpgkey-path=/etc/key", "Repository.set_gpgkey_path", "/etc/key")]
    [InlineData("observer", "endpoints=bugtool,http://t:4318", "Observer.set_endpoints", "[bugtool,http://t:4318]")]
    [InlineData("observer", "enabled=true", "Observer.set_enabled", "true")]
    [InlineData("observer", "attributes:svc=xapi", "Observer.set_attributes", "{svc:xapi}")]
    [InlineData("pci", "other-config:k=v", "PCI.add_to_other_config", "k, v")]
    [InlineData("vif", "ipv4-allowed=10.0.0.1,10.0.0.2", "VIF.set_ipv4_allowed", "[10.0.0.1,10.0.0.2]")]
    [InlineData("vm", "bios-strings:bios-vendor=Corral", "VM.set_bios_strings", "{bios-vendor:Corral}")]
    [InlineData("vm", "blocked-operations:data_sources_op=no", "VM.add_to_blocked_operations", "data_source_op, no")]
    [InlineData("host", "numa-affinity-policy=BEST_EFFORT", "host.set_numa_affinity_policy", "best_effort")]
    public async Task Param_set_calls_the_setter_xe_calls(string cls, string assignment, string method, string args)
    {
        var pool = PoolWith(cls).Answer(method);
        var (code, output, err) = await pool.RunAsync($"{cls}-param-set", $"uuid={Uuid}", assignment);
        Assert.Equal((0, "", ""), (code, output, err));
        Assert.Equal($"{method}({Self}, {args})", pool.CallLog.Last());
    }

    [Theory]
    [InlineData("vmss", "type=weekly", "Error: Expected one of 'snapshot', 'checkpoint', 'snapshot_with_quiesce', got weekly")]
    [InlineData("gpu-group", "allocation-algorithm=random", "Error: Invalid allocation algorithm. Got random")]
    [InlineData("pusb", "passthrough-enabled=yes", "Error: Failed to parse parameter 'passthrough-enabled': expecting a boolean (true or false)")]
    [InlineData("pool", "ha-allow-overcommit=yes", "Error: Parameter ha-allow-overcommit must be a boolean (true or false)")]
    [InlineData("vmss", "retained-snapshots=many", "Error: Failed to parse parameter 'retained-snapshots': expecting an integer")]
    [InlineData("bond", "mode=lacp", "Error: Field 'mode' is read-only.")]
    [InlineData("network", "tags=a", "Error: Field 'tags' is read-only.")]
    [InlineData("cluster", "other-config=a", "Error: Field 'other-config' is a map or set. use the 'name:key=value' syntax.")]
    [InlineData("pool", "cpu_info:k=v", "Error: Map field 'cpu_info' is read-only.")]
    [InlineData("vif", "ipv4-allowed:x=y", "Error: Cannot param-set on set fields")]
    [InlineData("vm", "bios-strings:colour=blue", "Error: Unknown key 'colour': expecting bios-vendor, bios-version, system-manufacturer, system-product-name, system-version, system-serial-number, baseboard-manufacturer, baseboard-product-name, baseboard-version, baseboard-serial-number, baseboard-asset-tag, baseboard-location-in-chassis, enclosure-asset-tag")]
    public async Task Param_set_refuses_what_xe_refuses_in_xes_words(string cls, string assignment, string error)
    {
        var pool = PoolWith(cls);
        var (code, _, err) = await pool.RunAsync($"{cls}-param-set", $"uuid={Uuid}", assignment);
        Assert.Equal((1, error + "\n"), (code, err));
        Assert.DoesNotContain(pool.CallLog, c => c.Contains(".set_", StringComparison.Ordinal) || c.Contains(".add_", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_unknown_blocked_operation_is_xapis_invalid_value()
    {
        var (code, _, err) = await PoolWith("vm").RunAsync("vm-param-set", $"uuid={Uuid}", "blocked-operations:data_source_op=x");
        Assert.Equal(1, code);
        Assert.Contains("blocked_operation", err, StringComparison.Ordinal);
        Assert.Contains("data_source_op", err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sets_of_references_are_added_by_uuid_and_sets_written_whole_are_read_first()
    {
        var pool = PoolWith("pgpu").Answer("VGPU_type.get_by_uuid", "OpaqueRef:type").Answer("PGPU.add_enabled_VGPU_types");
        Assert.Equal(0, (await pool.RunAsync("pgpu-param-add", $"uuid={Uuid}", "param-name=enabled-VGPU-types", "param-key=t-1")).Code);
        Assert.Equal(["VGPU_type.get_by_uuid(t-1)", $"PGPU.add_enabled_VGPU_types({Self}, OpaqueRef:type)"], pool.CallLog.TakeLast(2));

        var observer = PoolWith("observer", ("endpoints", new List<object?> { "bugtool" })).Answer("Observer.set_endpoints");
        Assert.Equal(0, (await observer.RunAsync("observer-param-add", $"uuid={Uuid}", "param-name=endpoints", "param-key=http://t")).Code);
        Assert.Equal([$"Observer.get_endpoints({Self})", $"Observer.set_endpoints({Self}, [http://t,bugtool])"], observer.CallLog.TakeLast(2));
        Assert.Equal(0, (await observer.RunAsync("observer-param-remove", $"uuid={Uuid}", "param-name=endpoints", "param-key=bugtool")).Code);
        Assert.Equal($"Observer.set_endpoints({Self}, [])", observer.CallLog.Last());
    }

    [Fact]
    public async Task A_map_written_whole_is_cleared_whole_and_read_only_sets_refuse_additions()
    {
        var observer = PoolWith("observer", ("attributes", new Dictionary<string, object?> { ["a"] = "1" })).Answer("Observer.set_attributes");
        Assert.Equal(0, (await observer.RunAsync("observer-param-clear", $"uuid={Uuid}", "param-name=attributes")).Code);
        Assert.Equal($"Observer.set_attributes({Self}, {{}})", observer.CallLog.Last());

        var vm = PoolWith("vm");
        var (code, _, err) = await vm.RunAsync("vm-param-add", $"uuid={Uuid}", "param-name=VBDs", "param-key=b-1");
        Assert.Equal((1, "Error: Parameter is read-only\n"), (code, err));
        (code, _, err) = await PoolWith("pif").RunAsync("pif-param-add", $"uuid={Uuid}", "param-name=properties", "gro=on");
        Assert.Equal((1, "Error: Parameter is read-only\n"), (code, err));
        (code, _, err) = await PoolWith("bond").RunAsync("bond-param-add", $"uuid={Uuid}", "param-name=properties", "mac=yes");
        Assert.Equal((1, "Unknown command: bond-param-add\nFor usage run: 'xe help'\n"), (code, err));
    }

    [Theory]
    [InlineData("sr", "allowed-operations", "VDI.create; PBD.create; scan", "allowed_operations", new[] { "vdi_create", "pbd_create", "scan" })]
    [InlineData("console", "protocol", "RFB", "protocol", "rfb")]
    [InlineData("pvs-proxy", "status", "incompatible-write-cache-mode", "status", "incompatible_write_cache_mode")]
    [InlineData("gpu-group", "allocation-algorithm", "breadth-first", "allocation_algorithm", "breadth_first")]
    [InlineData("message", "class", "VM", "cls", "VM")]
    public async Task Values_print_as_xe_spells_them(string cls, string param, string expected, string key, object value)
    {
        var stored = value is string[] list ? list.Cast<object?>().ToList() : value;
        var (code, output, err) = await PoolWith(cls, (key, stored)).RunAsync($"{cls}-param-get", $"uuid={Uuid}", $"param-name={param}");
        Assert.Equal((0, expected + "\n", ""), (code, output, err));
    }

    [Fact]
    public async Task Blocked_operations_show_xes_spelling_of_their_keys()
    {
        var pool = PoolWith("vm", ("blocked_operations", new Dictionary<string, object?> { ["data_source_op"] = "no", ["start"] = "maintenance" }));
        Assert.Equal("data_sources_op: no; start: maintenance\n", (await pool.RunAsync("vm-param-get", $"uuid={Uuid}", "param-name=blocked-operations")).Out);
        Assert.Equal("maintenance\n", (await pool.RunAsync("vm-param-get", $"uuid={Uuid}", "param-name=blocked-operations", "param-key=start")).Out);
    }

    [Fact]
    public async Task Related_objects_print_through_their_own_records()
    {
        var pool = PoolWith("pgpu", ("PCI", "OpaqueRef:pci"), ("GPU_group", "OpaqueRef:g"))
            .Add("PCI", "OpaqueRef:pci", new() { ["uuid"] = "pci-1", ["pci_id"] = "0000:01:00.0", ["vendor_name"] = "NVIDIA", ["dependencies"] = new List<object?> { "OpaqueRef:dep" } })
            .Add("PCI", "OpaqueRef:dep", new() { ["uuid"] = "pci-2", ["pci_id"] = "0000:01:00.1" })
            .Add("GPU_group", "OpaqueRef:g", new() { ["uuid"] = "g-1", ["name_label"] = "Group of NVIDIA" });
        var row = ClassCommandTests.Rows((await pool.RunAsync("pgpu-param-list", $"uuid={Uuid}")).Out).Single().ToDictionary(r => r.Label, r => r.Value);
        Assert.Equal("pci-1", row["pci-uuid ( RO)"]);
        Assert.Equal("NVIDIA", row["vendor-name ( RO)"]);
        Assert.Equal("0000:01:00.0", row["pci-id ( RO)"]);
        Assert.Equal("0000:01:00.1", row["dependencies (SRO)"]);
        Assert.Equal("g-1", row["gpu-group-uuid ( RW)"]);
        Assert.Equal("Group of NVIDIA", row["gpu-group-name-label ( RO)"]);
        Assert.Equal("<not in database>", row["host-uuid ( RO)"]);

        var subject = PoolWith("subject", ("roles", new List<object?> { "OpaqueRef:r" }))
            .Add("role", "OpaqueRef:r", new() { ["uuid"] = "r-1", ["name_label"] = "pool-admin" });
        Assert.Equal("pool-admin\n", (await subject.RunAsync("subject-param-get", $"uuid={Uuid}", "param-name=roles")).Out);

        var patch = PoolWith("patch", ("host_patches", new List<object?> { "OpaqueRef:hp1", "OpaqueRef:hp2" }))
            .Add("host_patch", "OpaqueRef:hp1", new() { ["uuid"] = "hp-1", ["host"] = "OpaqueRef:h1" })
            .Add("host_patch", "OpaqueRef:hp2", new() { ["uuid"] = "hp-2", ["host"] = "OpaqueRef:h2" })
            .Add("host", "OpaqueRef:h1", new() { ["uuid"] = "h-1" })
            .Add("host", "OpaqueRef:h2", new() { ["uuid"] = "h-2" });
        Assert.Equal("h-1, h-2\n", (await patch.RunAsync("patch-param-get", $"uuid={Uuid}", "param-name=hosts")).Out);

        var vgpuType = PoolWith("vgpu-type", ("max_resolution_x", 1920L), ("max_resolution_y", 1080L));
        Assert.Equal("1920x1080\n", (await vgpuType.RunAsync("vgpu-type-param-get", $"uuid={Uuid}", "param-name=max-resolution")).Out);
    }

    [Fact]
    public async Task Values_that_take_a_call_show_its_answer_and_unknown_when_it_fails()
    {
        var vtpm = PoolWith("vtpm").Answer("VTPM.get_contents", "abc");
        Assert.Equal("MD5=900150983cd24fb0d6963f7d28e17f72 size=3 bytes\n", (await vtpm.RunAsync("vtpm-param-get", $"uuid={Uuid}", "param-name=secret")).Out);

        var sriov = PoolWith("network-sriov").Answer("network_sriov.get_remaining_capacity", 7L);
        Assert.Equal("7\n", (await sriov.RunAsync("network-sriov-param-get", $"uuid={Uuid}", "param-name=remaining-capacity")).Out);
        Assert.Contains("<expensive field>", (await sriov.RunAsync("network-sriov-list", "params=remaining-capacity")).Out, StringComparison.Ordinal);
        sriov.Handlers["network_sriov.get_remaining_capacity"] = _ => throw new XenApiException("SRIOV_FAILED");
        Assert.Equal("<unknown>\n", (await sriov.RunAsync("network-sriov-param-get", $"uuid={Uuid}", "param-name=remaining-capacity")).Out);

        var cpu = PoolWith("host-cpu", ("number", 3L), ("host", "OpaqueRef:h"));
        cpu.Handlers["host.query_data_source"] = a => (string?)a[1] == "OpaqueRef:h" && (string?)a[2] == "cpu3" ? 0.25 : throw new XenApiException("WRONG");
        Assert.Equal("0.250\n", (await cpu.RunAsync("host-cpu-param-get", $"uuid={Uuid}", "param-name=utilisation")).Out);

        var pif = PoolWith("pif", ("device", "eth0"), ("host", "OpaqueRef:h"));
        pif.Handlers["host.query_data_source"] = a => (string?)a[2] == "pif_eth0_rx" ? 2048.0 : throw new XenApiException("WRONG");
        Assert.Equal("2.000\n", (await pif.RunAsync("pif-param-get", $"uuid={Uuid}", "param-name=io_read_kbs")).Out);

        // A server that does not implement the call leaves the parameter out of param-list.
        var quiet = PoolWith("vtpm");
        quiet.Handlers["VTPM.get_contents"] = _ => throw new XenApiException(ErrorCodes.NotImplemented, "VTPM.get_contents");
        Assert.DoesNotContain("secret", (await quiet.RunAsync("vtpm-param-list", $"uuid={Uuid}")).Out, StringComparison.Ordinal);
    }
}
