using Corral.PoolDatabase.Etcd;
using Corral.PoolDatabase.Etcd.Membership;
using Xunit;

namespace Corral.UnitTests;

public sealed class EtcdEndpointsTests
{
    private static readonly EtcdMemberInfo Host1 = new(1, "lab-host1", ["http://10.0.0.11:2380"], ["http://10.0.0.11:2379"], false);
    private static readonly EtcdMemberInfo Host2 = new(2, "lab-host2", ["http://10.0.0.12:2380"], ["http://10.0.0.12:2379"], false);
    private static readonly EtcdMemberInfo Host3 = new(3, "lab-host3", ["http://10.0.0.13:2380"], ["http://10.0.0.13:2379"], false);

    [Fact]
    public void A_voter_prefers_its_own_member_and_falls_back_to_the_others()
    {
        // Its own member appears once, as loopback: its advertised URL is the same process.
        Assert.Equal(["http://127.0.0.1:2379", "http://10.0.0.12:2379", "http://10.0.0.13:2379"],
            EtcdEndpoints.Order(["http://127.0.0.1:2379"], [Host1, Host2, Host3], "http://10.0.0.11:2379"));
    }

    [Fact]
    public void Learners_and_members_not_yet_started_are_no_fallback()
    {
        var learner = Host3 with { IsLearner = true };
        var added = new EtcdMemberInfo(4, "", ["http://10.0.0.14:2380"], [], false);
        Assert.Equal(["http://127.0.0.1:2379", "http://10.0.0.12:2379"],
            EtcdEndpoints.Order(["http://127.0.0.1:2379"], [Host1, Host2, learner, added], "http://10.0.0.11:2379"));
    }

    [Fact]
    public void A_client_keeps_its_voters_order_drops_an_ejected_one_and_adds_a_new_one()
    {
        var host4 = new EtcdMemberInfo(4, "lab-host4", ["http://10.0.0.14:2380"], ["http://10.0.0.14:2379"], false);
        Assert.Equal(["http://10.0.0.13:2379", "http://10.0.0.11:2379", "http://10.0.0.14:2379"],
            EtcdEndpoints.Order(["http://10.0.0.13:2379", "http://10.0.0.12:2379", "http://10.0.0.11:2379"], [Host1, Host3, host4], null));
    }

    [Fact]
    public void A_pool_of_one_on_loopback_keeps_its_endpoint()
    {
        var alone = new EtcdMemberInfo(1, "host", ["http://127.0.0.1:2380"], ["http://127.0.0.1:2379"], false);
        Assert.Equal(["http://127.0.0.1:2379"], EtcdEndpoints.Order(["http://127.0.0.1:2379"], [alone], "http://127.0.0.1:2379"));
        Assert.Equal(["http://127.0.0.1:2379"], EtcdEndpoints.Order(["http://127.0.0.1:2379"], [], null));
    }

    [Fact]
    public void Updates_are_announced_only_when_the_order_changes()
    {
        var endpoints = new EtcdEndpoints(["http://127.0.0.1:2379"]);
        var changes = 0;
        endpoints.Changed += () => changes++;
        Assert.False(endpoints.Update(["http://127.0.0.1:2379"]));
        Assert.True(endpoints.Update(["http://127.0.0.1:2379", "http://10.0.0.12:2379"]));
        Assert.False(endpoints.Update([]));
        Assert.Equal(1, changes);
        Assert.Equal([new Uri("http://127.0.0.1:2379"), new Uri("http://10.0.0.12:2379")], endpoints.Current);
    }
}
