using Corral.Api.AllowedOperations;
using Corral.Api.Dispatch;
using Corral.Model;
using Xunit;

namespace Corral.UnitTests.AllowedOperations;

/// <summary>Facts derived from records, the object index, dependencies, and the honesty rule's message tables.</summary>
public sealed class OperationFactsTests
{
    private static XenObject Make(ClassSchema schema, string reference, Dictionary<string, object?> fields) =>
        new(schema, reference, new Dictionary<string, object?>(fields) { ["uuid"] = Guid.NewGuid().ToString() });

    private static readonly Func<string, IReadOnlySet<string>> NoFeatures = _ => new HashSet<string>();

    [Fact]
    public void Vm_facts_come_from_the_vm_its_metrics_guest_metrics_disks_and_the_pool()
    {
        var metrics = Make(XenClasses.VMMetricsSchema, "OpaqueRef:m", new() { ["nomigrate"] = true, ["current_domain_type"] = "hvm" });
        var guest = Make(XenClasses.VMGuestMetricsSchema, "OpaqueRef:g", new()
        {
            ["PV_drivers_version"] = new Dictionary<string, object?> { ["major"] = "1", ["minor"] = "2", ["micro"] = "3", ["build"] = "0" },
            ["live"] = true,
            ["other"] = new Dictionary<string, object?> { ["feature-shutdown"] = "1" },
        });
        var vm = Make(XenClasses.VMSchema, "OpaqueRef:vm", new()
        {
            ["power_state"] = "Running", ["metrics"] = "OpaqueRef:m", ["guest_metrics"] = "OpaqueRef:g",
            ["platform"] = new Dictionary<string, object?> { ["nested-virt"] = "TRUE" },
            ["other_config"] = new Dictionary<string, object?> { ["default_template"] = "1" },
            ["current_operations"] = new Dictionary<string, object?> { ["OpaqueRef:t"] = "clean_shutdown" },
            ["blocked_operations"] = new Dictionary<string, object?> { ["start"] = "no" },
        });
        var vdi = Make(XenClasses.VDISchema, "OpaqueRef:vdi", new() { ["sm_config"] = new Dictionary<string, object?> { ["on_boot"] = "reset", ["caching"] = "true" } });
        var vbd = Make(XenClasses.VBDSchema, "OpaqueRef:vbd", new() { ["VM"] = "OpaqueRef:vm", ["VDI"] = "OpaqueRef:vdi" });
        var pool = Make(XenClasses.PoolSchema, "OpaqueRef:pool", new() { ["other_config"] = new Dictionary<string, object?> { ["rolling_upgrade_in_progress"] = "x" } });
        var facts = new OperationFacts(PoolObjectIndex.Of([metrics, guest, vdi, vbd, pool]), NoFeatures).Vm(vm);
        Assert.Equal(VmPowerState.Running, facts.PowerState);
        Assert.True(facts.HasPvDrivers);
        Assert.True(facts.GuestAgentLive);
        Assert.True(facts.HasFeature("feature-shutdown"));
        Assert.True(facts.NoMigrate);
        // With a metrics record its value wins over the platform key (the metrics say false here).
        Assert.False(facts.NestedVirt);
        Assert.True(facts.IsDefaultTemplate);
        Assert.True(facts.RollingUpgrade);
        Assert.Equal([(true, true)], facts.Vdis);
        Assert.Equal([new KeyValuePair<string, VmOperations>("OpaqueRef:t", VmOperations.CleanShutdown)], facts.CurrentOperations.Entries);
        Assert.Equal("no", facts.BlockedOperations[VmOperations.Start]);
        Assert.Equal(DomainType.Hvm, facts.CurrentDomainType);

        var bare = new OperationFacts(PoolObjectIndex.Of([]), NoFeatures).Vm(vm);
        Assert.True(bare.NestedVirt);
        Assert.False(bare.NoMigrate);
        Assert.False(bare.HasPvDrivers);
        Assert.Null(bare.CurrentDomainType);
    }

    [Theory]
    [InlineData("1", "2", null, true)]
    [InlineData("1", "x", null, false)]
    [InlineData("1", "2", "beta", false)]
    [InlineData(null, "2", null, false)]
    public void Pv_drivers_need_a_numeric_version(string? major, string? minor, string? micro, bool expected)
    {
        var version = new Dictionary<string, object?>();
        foreach (var (k, v) in new[] { ("major", major), ("minor", minor), ("micro", micro) })
        {
            if (v is not null)
            {
                version[k] = v;
            }
        }

        Assert.Equal(expected, OperationFacts.HasPvDrivers(Make(XenClasses.VMGuestMetricsSchema, "OpaqueRef:g", new() { ["PV_drivers_version"] = version })));
        Assert.False(OperationFacts.HasPvDrivers(null));
    }

    [Fact]
    public void Dom0_is_the_control_domain_its_host_names()
    {
        var vm = Make(XenClasses.VMSchema, "OpaqueRef:dom0", new() { ["is_control_domain"] = true, ["resident_on"] = "OpaqueRef:h", ["power_state"] = "Running" });
        var host = Make(XenClasses.HostSchema, "OpaqueRef:h", new() { ["control_domain"] = "OpaqueRef:dom0" });
        Assert.True(new OperationFacts(PoolObjectIndex.Of([host]), NoFeatures).Vm(vm).IsDomainZero);
        Assert.False(new OperationFacts(PoolObjectIndex.Of([]), NoFeatures).Vm(vm).IsDomainZero);
    }

    [Fact]
    public void The_index_follows_forward_links_as_objects_change()
    {
        var index = new PoolObjectIndex();
        index.Put(Make(XenClasses.VBDSchema, "OpaqueRef:vbd", new() { ["VM"] = "OpaqueRef:a", ["VDI"] = "OpaqueRef:d" }));
        Assert.Single(index.Referring(XenClasses.VBD, "VM", "OpaqueRef:a"));
        index.Put(Make(XenClasses.VBDSchema, "OpaqueRef:vbd", new() { ["VM"] = "OpaqueRef:b", ["VDI"] = "OpaqueRef:d" }));
        Assert.Empty(index.Referring(XenClasses.VBD, "VM", "OpaqueRef:a"));
        Assert.Single(index.Referring(XenClasses.VBD, "VM", "OpaqueRef:b"));
        index.Remove(XenClasses.VBD, "OpaqueRef:vbd");
        Assert.Empty(index.Referring(XenClasses.VBD, "VDI", "OpaqueRef:d"));
        Assert.Empty(index.Referring(XenClasses.VIF, "VM", "OpaqueRef:b"));
        Assert.Throws<InvalidOperationException>(() => index.Referring(XenClasses.VM, "affinity", "OpaqueRef:h"));
    }

    [Fact]
    public void A_change_reaches_the_objects_whose_rules_read_it()
    {
        var vm = Make(XenClasses.VMSchema, "OpaqueRef:vm", new() { ["guest_metrics"] = "OpaqueRef:g", ["metrics"] = "OpaqueRef:m" });
        var vbd = Make(XenClasses.VBDSchema, "OpaqueRef:vbd", new() { ["VM"] = "OpaqueRef:vm", ["VDI"] = "OpaqueRef:vdi" });
        var vif = Make(XenClasses.VIFSchema, "OpaqueRef:vif", new() { ["VM"] = "OpaqueRef:vm", ["network"] = "OpaqueRef:n" });
        var vdi = Make(XenClasses.VDISchema, "OpaqueRef:vdi", new() { ["SR"] = "OpaqueRef:sr" });
        var pbd = Make(XenClasses.PBDSchema, "OpaqueRef:pbd", new() { ["SR"] = "OpaqueRef:sr" });
        var guest = Make(XenClasses.VMGuestMetricsSchema, "OpaqueRef:g", new());
        var index = PoolObjectIndex.Of([vm, vbd, vif, vdi, pbd, guest]);
        Assert.Equal([(XenClasses.VBD, "OpaqueRef:vbd"), (XenClasses.VM, "OpaqueRef:vm"), (XenClasses.VDI, "OpaqueRef:vdi")],
            AllowedOperationsCalculator.Dependents(index, vbd));
        Assert.Equal([(XenClasses.VM, "OpaqueRef:vm"), (XenClasses.VBD, "OpaqueRef:vbd"), (XenClasses.VIF, "OpaqueRef:vif")],
            AllowedOperationsCalculator.Dependents(index, guest).ToList());
        Assert.Contains((XenClasses.VDI, "OpaqueRef:vdi"), AllowedOperationsCalculator.Dependents(index, pbd));
        Assert.Contains((XenClasses.SR, "OpaqueRef:sr"), AllowedOperationsCalculator.Dependents(index, vdi));
        Assert.Contains((XenClasses.VM, "OpaqueRef:vm"), AllowedOperationsCalculator.Dependents(index, vdi));
    }

    [Fact]
    public void Only_a_change_of_allowed_operations_or_of_reverse_links_is_ignored()
    {
        var vm = Make(XenClasses.VMSchema, "OpaqueRef:vm", new() { ["power_state"] = "Halted" });
        var listed = vm.Clone();
        listed["allowed_operations"] = new List<object?> { "start" };
        listed["VBDs"] = new List<object?> { "OpaqueRef:vbd" };
        Assert.True(AllowedOperationsService.OnlyAllowedOperationsDiffer(vm, listed));
        var started = listed.Clone();
        started["current_operations"] = new Dictionary<string, object?> { ["OpaqueRef:t"] = "start" };
        Assert.False(AllowedOperationsService.OnlyAllowedOperationsDiffer(listed, started));
    }

    [Fact]
    public void Stale_entries_are_those_whose_task_is_gone_or_finished()
    {
        var tasks = new Dictionary<string, XenObject>
        {
            ["OpaqueRef:pending"] = Make(XenClasses.TaskSchema, "OpaqueRef:pending", new() { ["status"] = "pending" }),
            ["OpaqueRef:done"] = Make(XenClasses.TaskSchema, "OpaqueRef:done", new() { ["status"] = "success" }),
        };
        var vm = Make(XenClasses.VMSchema, "OpaqueRef:vm", new()
        {
            ["current_operations"] = new Dictionary<string, object?> { ["OpaqueRef:pending"] = "start", ["OpaqueRef:done"] = "clone", ["start-1234"] = "start" },
        });
        Assert.Equal(["OpaqueRef:done", "start-1234"], StaleCurrentOperations.StaleEntries(vm, t => tasks.GetValueOrDefault(t)));
    }

    [Fact]
    public void Every_message_the_honesty_rule_names_is_in_xapis_datamodel()
    {
        var registry = new ApiRegistry();
        var names = ImplementedOperations.VmMessages.Values.Concat(ImplementedOperations.VbdMessages.Values).Concat(ImplementedOperations.VifMessages.Values)
            .Concat(ImplementedOperations.VdiMessages.Values).Concat(ImplementedOperations.SrMessages.Values).Concat(ImplementedOperations.HostMessages.Values)
            .Concat(ImplementedOperations.PoolMessages.Values).Concat(ImplementedOperations.TaskMessages.Values).SelectMany(m => m).ToList();
        Assert.All(names.Where(n => !ImplementedOperations.ServedHttpHandlers.Contains(n)), name => Assert.NotNull(registry.Find(name)?.Schema));
        // The HTTP handlers Corral serves are xapi's, by the names of their RBAC permissions.
        Assert.All(ImplementedOperations.ServedHttpHandlers, name => Assert.NotNull(RoleTable.FindByNameLabel(name)));
    }

    [Fact]
    public void The_registry_decides_what_is_implemented()
    {
        var registry = new ApiRegistry();
        var implemented = ImplementedOperations.From(registry);
        Assert.False(implemented.Has(VmOperations.Start));
        registry.Implement("VM.start", (_, _, _) => Task.FromResult<object?>(null));
        Assert.True(implemented.Has(VmOperations.Start));
        Assert.True(implemented.Has(VbdOperations.Attach));
        Assert.True(implemented.Has(HostAllowedOperations.VmStart));
        Assert.False(implemented.Has(VmOperations.MetadataExport));
        Assert.True(ImplementedOperations.Everything.Has(VmOperations.MetadataExport));
        // export is the HTTP handler /export, which Corral serves whatever the registry holds.
        Assert.True(implemented.Has(VmOperations.Export));
    }
}
