namespace Corral.PoolDatabase.Etcd.Membership;

/// <summary>
/// Which hosts vote in the pool database: 3 voters, 5 once the pool has five hosts (an odd number, so a majority
/// survives the most failures); one learner beyond them (etcd takes one at a time), and plain clients after that.
/// </summary>
public static class VoterPolicy
{
    public static int TargetVoters(int hosts) => hosts >= 5 ? 5 : 3;

    public static EtcdRole RoleFor(int voters, int learners, int hostsAfterJoin) =>
        learners > 0 ? EtcdRole.Client
        : voters < TargetVoters(hostsAfterJoin) ? EtcdRole.Voter
        : EtcdRole.Learner;
}
