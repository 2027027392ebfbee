using Corral.PoolDatabase.Etcd.Membership;
using Xunit;

namespace Corral.UnitTests;

public sealed class MembershipTests
{
    [Theory]
    [InlineData(1, 0, 2, EtcdRole.Voter)] // the second host of a pool votes
    [InlineData(2, 0, 3, EtcdRole.Voter)]
    [InlineData(3, 0, 4, EtcdRole.Learner)] // three voters are enough for four hosts; the fourth keeps a replica
    [InlineData(3, 1, 5, EtcdRole.Client)] // a learner still pending: etcd takes one at a time
    [InlineData(3, 0, 5, EtcdRole.Voter)] // five hosts: five voters
    [InlineData(4, 0, 6, EtcdRole.Voter)]
    [InlineData(5, 0, 6, EtcdRole.Learner)]
    [InlineData(5, 1, 7, EtcdRole.Client)]
    public void Roles_follow_the_voter_policy(int voters, int learners, int hostsAfterJoin, EtcdRole expected) =>
        Assert.Equal(expected, VoterPolicy.RoleFor(voters, learners, hostsAfterJoin));

    [Fact]
    public void The_initial_cluster_names_every_started_member_and_the_newcomer()
    {
        var members = new[]
        {
            new EtcdMemberInfo(1, "lab-host1", ["http://10.0.0.11:2380"], ["http://10.0.0.11:2379"], false),
            new EtcdMemberInfo(2, "", ["http://10.0.0.12:2380"], [], true), // added, never started: etcd names it once it runs
        };
        Assert.Equal("lab-host1=http://10.0.0.11:2380,lab-host3=http://10.0.0.13:2380",
            EtcdClusterAdmin.InitialCluster(members, "lab-host3", "http://10.0.0.13:2380"));
    }

    [Fact]
    public void Membership_survives_a_round_trip_through_its_file()
    {
        var path = Path.Combine(Path.GetTempPath(), $"corral-membership-{Guid.NewGuid():N}.json");
        try
        {
            var membership = new EtcdMembership(EtcdRole.Learner, ["http://10.0.0.11:2379", "http://10.0.0.12:2379"], "a=http://x:2380", 0xfeedUL);
            membership.Save(path);
            var loaded = EtcdMembership.Load(path)!;
            Assert.Equal(membership.Role, loaded.Role);
            Assert.Equal(membership.Endpoints, loaded.Endpoints);
            Assert.Equal(membership.MemberId, loaded.MemberId);
            Assert.Null(EtcdMembership.Load(path + ".missing"));
        }
        finally
        {
            File.Delete(path);
        }
    }
}
