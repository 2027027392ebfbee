namespace Corral.Api.Pool;

/// <summary>
/// What a master grants a host asking for a place in the pool database: its etcd role (voter, learner or client),
/// its member id, the cluster to start its member in, the client endpoints to use, the pool secret hosts use to
/// call one another, and the pool's TLS for etcd: the host's certificate (signed from its request), the pool's CA
/// certificate and the CA's key (PEM), which every host holds so that whichever is master can admit the next.
/// </summary>
public sealed record MemberAdmission(string Role, ulong MemberId, string InitialCluster, IReadOnlyList<string> Endpoints, string PoolSecret,
    string Certificate = "", string CaCertificate = "", string CaKey = "");

/// <summary>
/// Joining, leaving and recovering a pool: the changes to this host's place in the pool database that restart its
/// etcd member. Implemented by the agent, which owns the member; the XenAPI messages call it.
/// </summary>
public interface IPoolMembership
{
    /// <summary><c>pool.join</c>, run on the joining host: asks the master for a place and moves this host into its pool.</summary>
    Task JoinAsync(string masterAddress, string user, string password, CancellationToken cancellationToken);

    /// <summary>
    /// On the master: gives the host <paramref name="memberName"/> a place in the cluster, and signs its certificate
    /// signing request (<paramref name="signingRequest"/>, PEM) with the pool's CA.
    /// </summary>
    Task<MemberAdmission> AdmitAsync(string memberName, string peerUrl, string signingRequest, int hostsAfterJoin, CancellationToken cancellationToken);

    /// <summary>On the master: makes an admitted learner a voter once it has caught up.</summary>
    Task PromoteAsync(ulong memberId, CancellationToken cancellationToken);

    /// <summary><c>pool.eject</c>, run on the ejected host once its records are gone: leave the cluster, start afresh.</summary>
    Task LeaveAsync(CancellationToken cancellationToken);

    /// <summary><c>pool.emergency_transition_to_master</c>: a one-member cluster from this host's copy, this host master.</summary>
    Task EmergencyTransitionToMasterAsync(CancellationToken cancellationToken);

    /// <summary><c>pool.emergency_reset_master</c>: follow the new master at <paramref name="masterAddress"/> (rejoin its cluster).</summary>
    Task EmergencyResetMasterAsync(string masterAddress, CancellationToken cancellationToken);
}
