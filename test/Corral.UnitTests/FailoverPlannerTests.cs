using Corral.HighAvailability;
using Xunit;

namespace Corral.UnitTests;

/// <summary>
/// Failover planning: for every set of N failed hosts the protected VMs that ran there fit on the survivors next to
/// what runs there already; unprotected VMs count where they run and are not restarted.
/// </summary>
public sealed class FailoverPlannerTests
{
    private const long GiB = 1L << 30;

    private static PlanHost Host(string name, long gib) => new(name, gib * GiB);

    private static PlanVm Vm(string name, string host, long gib, bool isProtected = true) => new(name, host, gib * GiB, isProtected);

    [Fact]
    public void Three_hosts_with_room_tolerate_two_failures()
    {
        PlanHost[] hosts = [Host("h1", 8), Host("h2", 8), Host("h3", 8)];
        PlanVm[] vms = [Vm("a", "h1", 2), Vm("b", "h2", 2), Vm("c", "h3", 2)];
        Assert.Equal(2, FailoverPlanner.MaxFailuresToTolerate(hosts, vms));
        Assert.True(FailoverPlanner.PlanExists(hosts, vms, 0));
        // Every host gone: nowhere to restart anything.
        Assert.False(FailoverPlanner.PlanExists(hosts, vms, 3));
    }

    [Fact]
    public void The_worst_failure_set_decides()
    {
        // h1's 6 GiB VM fits nowhere else once h2's 4 GiB VM sits there and h3 is small.
        PlanHost[] hosts = [Host("h1", 8), Host("h2", 8), Host("h3", 4)];
        PlanVm[] vms = [Vm("big", "h1", 6), Vm("mid", "h2", 4)];
        Assert.False(FailoverPlanner.PlanExists(hosts, vms, 1));
        Assert.Equal(0, FailoverPlanner.MaxFailuresToTolerate(hosts, vms));

        // Unprotected, the big VM is simply lost with its host: the plan holds for one failure.
        PlanVm[] unprotectedBig = [Vm("big", "h1", 6, isProtected: false), Vm("mid", "h2", 4)];
        Assert.Equal(1, FailoverPlanner.MaxFailuresToTolerate(hosts, unprotectedBig));
    }

    [Fact]
    public void Unprotected_vms_on_survivors_keep_their_memory()
    {
        PlanHost[] hosts = [Host("h1", 4), Host("h2", 4)];
        Assert.True(FailoverPlanner.PlanExists(hosts, [Vm("p", "h1", 3)], 1));
        Assert.False(FailoverPlanner.PlanExists(hosts, [Vm("p", "h1", 3), Vm("u", "h2", 2, isProtected: false)], 1));
    }

    [Fact]
    public void Placement_is_largest_first_on_the_host_with_most_room()
    {
        PlanHost[] hosts = [Host("h1", 16), Host("h2", 6), Host("h3", 5)];
        PlanVm[] vms = [Vm("small", "h1", 1), Vm("large", "h1", 4), Vm("medium", "h1", 2)];
        var placement = FailoverPlanner.Place(hosts, vms, new HashSet<string> { "h1" });
        Assert.NotNull(placement);
        // large (4) -> h2 (6 free, the most); medium (2) -> h3 (5 > 2 left on h2); small (1) -> h3 (3 left) over h2 (2 left).
        Assert.Equal("h2", placement["large"]);
        Assert.Equal("h3", placement["medium"]);
        Assert.Equal("h3", placement["small"]);
    }

    [Fact]
    public void Restart_priorities_are_xenservers()
    {
        Assert.True(RestartPriority.IsValid("restart"));
        Assert.True(RestartPriority.IsValid("best-effort"));
        Assert.True(RestartPriority.IsValid(""));
        Assert.False(RestartPriority.IsValid("always"));
    }
}
