using Corral.Api.AllowedOperations;
using Corral.Model;
using Corral.PoolDatabase;
using Xunit;

namespace Corral.UnitTests.AllowedOperations;

/// <summary>allowed_operations as derived state: which fields never live in an object's key, and what the master knows is stored.</summary>
public sealed class DerivedStateTests
{
    private static XenObject Vm(string reference, params string[] allowed) =>
        new(XenClasses.VMSchema, reference, new Dictionary<string, object?>
        {
            ["uuid"] = Guid.NewGuid().ToString(),
            ["allowed_operations"] = allowed.Cast<object?>().ToList(),
        });

    private static PoolChange ListChange(long revision, string reference, params string[] allowed) =>
        new(revision, ChangeKind.Mod, Vm(reference, allowed)) { DerivedField = DerivedFields.AllowedOperations };

    [Fact]
    public void Derived_fields_are_reverse_links_live_and_allowed_operations()
    {
        Assert.Equal(["VBDs", "VIFs", "VTPMs", "allowed_operations", "children", "consoles", "snapshots"], DerivedFields.Of(XenClasses.VMSchema).Order(StringComparer.Ordinal));
        Assert.Equal(["live"], DerivedFields.Of(XenClasses.HostMetricsSchema));
        Assert.Contains("allowed_operations", DerivedFields.Of(XenClasses.NetworkSchema));
        Assert.Empty(DerivedFields.Of(XenClasses.VMMetricsSchema));
        Assert.False(DerivedFields.HasAllowedOperations(XenClasses.VMMetricsSchema));
    }

    [Fact]
    public void The_master_knows_its_own_writes_and_checks_only_lists_others_wrote()
    {
        var index = PoolObjectIndex.Of([Vm("OpaqueRef:a", "start"), Vm("OpaqueRef:b")]);
        var stored = StoredAllowedOperations.Of(index, 10);
        Assert.True(stored.Holds(XenClasses.VM, "OpaqueRef:a", ["start"]));
        Assert.True(stored.Holds(XenClasses.VM, "OpaqueRef:b", []));
        Assert.True(stored.Holds(XenClasses.VM, "OpaqueRef:new", []));
        Assert.False(stored.Holds(XenClasses.VM, "OpaqueRef:new", ["start"]));

        // Its own write comes back as its change: nothing to check.
        stored.Written(XenClasses.VM, "OpaqueRef:a", ["destroy"], 12);
        Assert.False(stored.Observe(ListChange(12, "OpaqueRef:a", "destroy")));
        // An older write arriving late is no news either: the newer one is known.
        Assert.False(stored.Observe(ListChange(11, "OpaqueRef:a", "clone")));
        Assert.True(stored.Holds(XenClasses.VM, "OpaqueRef:a", ["destroy"]));
        // Another writer's newer list is: the master checks that object again.
        Assert.True(stored.Observe(ListChange(13, "OpaqueRef:a", "clone")));
        Assert.True(stored.Holds(XenClasses.VM, "OpaqueRef:a", ["clone"]));
        Assert.False(stored.Observe(ListChange(14, "OpaqueRef:a", "clone")));

        stored.Forget(XenClasses.VM, "OpaqueRef:a");
        Assert.True(stored.Holds(XenClasses.VM, "OpaqueRef:a", []));
    }
}
