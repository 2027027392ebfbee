using Corral.Cli.Records;
using Corral.Model;

namespace Corral.Cli.Tests;

/// <summary>
/// The generic commands of every xe class (&lt;class&gt;-list, -param-list, -param-get, -param-set...), checked against
/// xe's parameter table (xe-class-parameters.txt, the facts of xapi's records.ml) over a canned pool holding one object
/// of the class with the datamodel's defaults.
/// </summary>
public class ClassCommandTests
{
    public static TheoryData<string> DefinedClasses() => [.. XeClasses.Defined.Select(c => c.Name)];

    public static TheoryData<string> OfferedClasses() => [.. XeClasses.All.Select(c => c.Name)];

    private const string Uuid = "0b7e5c52-0000-4000-8000-000000000001";
    private const string Ref = "OpaqueRef:object";

    /// <summary>A pool holding one object of the class, every field at the datamodel's default, shaped to pass the class's filters.</summary>
    private static CannedPool PoolWith(XeClass cls, Action<Dictionary<string, object?>>? adjust = null)
    {
        var fields = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var field in XenClasses.Get(cls.ApiClass).Fields)
        {
            fields[field.Name] = field.NewDefault() is DateTime dt ? XenDateTime.Format(dt) : field.NewDefault();
        }

        fields["uuid"] = Uuid;
        if (fields.ContainsKey("name_label"))
        {
            fields["name_label"] = "thing";
        }

        switch (cls.Name)
        {
            case "template":
                fields["is_a_template"] = true;
                break;
            case "snapshot":
                fields["is_a_snapshot"] = true;
                break;
            case "role":
                fields["subroles"] = new List<object?> { "OpaqueRef:permission" };
                break;
        }

        adjust?.Invoke(fields);
        return new CannedPool().Add(cls.ApiClass, Ref, fields);
    }

    /// <summary>The records xe printed: each a list of (label, value).</summary>
    internal static List<List<(string Label, string Value)>> Rows(string output) =>
        output.Split("\n\n\n", StringSplitOptions.RemoveEmptyEntries)
            .Select(record => record.Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(l => (l[..l.IndexOf(": ", StringComparison.Ordinal)].Trim(), l[(l.IndexOf(": ", StringComparison.Ordinal) + 2)..]))
                .ToList())
            .ToList();

    private static List<List<string>> Labels(string output) => Rows(output).Select(r => r.Select(f => f.Label).ToList()).ToList();

    [Fact]
    public void Every_class_xe_has_is_defined()
    {
        Assert.Equal(XeParameterTable.Classes.Keys.Order(), XeClasses.Defined.Select(c => c.Name).Except(["template", "snapshot"]).Order());
    }

    [Theory]
    [MemberData(nameof(DefinedClasses))]
    public void Parameters_are_xes_in_xes_order_with_xes_qualifiers(string name)
    {
        var cls = XeClasses.Defined.Single(c => c.Name == name);
        var expected = XeParameterTable.Of(name);
        Assert.Equal(expected.Select(p => p.Label), cls.AllFields.Select(f => f.Label));
        Assert.Equal(expected.Select(p => (p.Hidden, p.Expensive, p.KeySet)),
            cls.AllFields.Select(f => (f.Hidden, f.Expensive, f.MapSetInMap is not null || f.MapReplace is not null)));
    }

    [Theory]
    [InlineData("vm-group", "VM_group")]
    [InlineData("hostdriver", "Host_driver")]
    [InlineData("hostdriver-variant", "Driver_variant")]
    [InlineData("caller", "Caller")]
    [InlineData("rate-limit", "Rate_limit")]
    public async Task A_class_the_model_lacks_is_not_offered(string name, string apiClass)
    {
        Assert.Null(XenClasses.Find(apiClass));
        Assert.DoesNotContain(XeClasses.All, c => c.Name == name);
        var (code, _, err) = await CannedPool.Standard().RunAsync($"{name}-list");
        Assert.Equal((1, $"Unknown command: {name}-list\nFor usage run: 'xe help'\n"), (code, err));
    }

    [Theory]
    [MemberData(nameof(OfferedClasses))]
    public async Task Param_list_prints_every_visible_parameter_the_model_has_in_xes_order(string name)
    {
        var cls = XeClasses.Get(name);
        var pool = PoolWith(cls);
        var (code, output, err) = await pool.RunAsync($"{name}-param-list", $"uuid={Uuid}");
        Assert.Equal((0, ""), (code, err));

        // Parameters that take a call the canned pool does not answer are left out, as from a server without it
        // (VCPUs-utilisation takes one call per VCPU, none for a VM without metrics).
        var expected = XeParameterTable.Of(name)
            .Where(p => !p.Hidden && cls.Find(p.Name) is { } f && (f.Fetch is null || p.Name == "VCPUs-utilisation")).Select(p => p.Label);
        Assert.Equal(string.Join("\n", expected), string.Join("\n", Labels(output).Single()));
        Assert.Contains(cls.Fields, f => f.Fetch is null && !f.Hidden);
    }

    [Theory]
    [MemberData(nameof(OfferedClasses))]
    public async Task List_prints_xes_default_parameters(string name)
    {
        var cls = XeClasses.Get(name);
        var (code, output, err) = await PoolWith(cls).RunAsync($"{name}-list");
        Assert.Equal((0, ""), (code, err));
        var shown = cls.Fields.Where(f => !f.Hidden && (cls.DefaultListParams.Count == 0 || cls.DefaultListParams.Contains(f.Name)))
            .Where(f => f.Fetch is null || f.Expensive).ToList();
        Assert.Equal([shown.Select(f => f.Label).ToList()], Labels(output));
        Assert.All(Rows(output).Single().Where(r => shown.Single(f => f.Label == r.Label).Expensive), r => Assert.Equal("<expensive field>", r.Value));
    }

    [Theory]
    [InlineData("vm", "uuid,name-label,power-state")]
    [InlineData("template", "uuid,name-label,name-description")]
    [InlineData("snapshot", "uuid,name-label,name-description,is-vmss-snapshot")]
    [InlineData("bond", "uuid,master,slaves")]
    [InlineData("vlan", "uuid,tagged-PIF,untagged-PIF,tag")]
    [InlineData("tunnel", "uuid,access-PIF,transport-PIF,status")]
    [InlineData("host-cpu", "uuid,number,vendor,speed,utilisation")]
    [InlineData("host-crashdump", "uuid,timestamp,size")]
    [InlineData("role", "uuid,name,description")]
    [InlineData("network-sriov", "uuid,requires-reboot")]
    [InlineData("message", "uuid,name,priority,class,obj-uuid,timestamp,body")]
    [InlineData("secret", "uuid,value")]
    [InlineData("vtpm", "uuid,vm-uuid")]
    public async Task List_defaults_are_xes_even_where_xe_names_parameters_that_do_not_exist(string name, string fields)
    {
        var (_, output, _) = await PoolWith(XeClasses.Get(name)).RunAsync($"{name}-list");
        Assert.Equal(fields.Split(','), Labels(output).Single().Select(l => l[..l.IndexOf(" (", StringComparison.Ordinal)]));
    }

    [Fact]
    public async Task Lists_apply_the_class_filters_snapshots_and_roles_that_group_permissions()
    {
        var pool = new CannedPool();
        pool.Add("VM", "OpaqueRef:s", new() { ["uuid"] = "s-1", ["name_label"] = "snap", ["is_a_snapshot"] = true, ["is_a_template"] = true });
        pool.Add("VM", "OpaqueRef:v", new() { ["uuid"] = "v-1", ["name_label"] = "vm", ["is_a_snapshot"] = false, ["is_a_template"] = false });
        pool.Add("role", "OpaqueRef:admin", new() { ["uuid"] = "r-1", ["name_label"] = "pool-admin", ["subroles"] = new List<object?> { "OpaqueRef:p" } });
        pool.Add("role", "OpaqueRef:p", new() { ["uuid"] = "r-2", ["name_label"] = "vm.start", ["subroles"] = new List<object?>() });
        Assert.Equal("s-1\n", (await pool.RunAsync("snapshot-list", "--minimal")).Out);
        Assert.Equal("\n", (await pool.RunAsync("template-list", "--minimal")).Out);
        Assert.Equal("r-1\n", (await pool.RunAsync("role-list", "--minimal", "params=uuid")).Out);
        Assert.Equal("r-1\n", (await pool.RunAsync("role-list", "--minimal", "params=uuid", "--all")).Out);
        Assert.Equal("vm.start\n", (await pool.RunAsync("role-param-get", "uuid=r-2", "param-name=name")).Out);
    }
}
