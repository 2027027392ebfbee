using dotnet_etcd;
using Etcdserverpb;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace Corral.PoolDatabase.Etcd.Membership;

/// <summary>One etcd member as the cluster lists it.</summary>
public sealed record EtcdMemberInfo(ulong Id, string Name, IReadOnlyList<string> PeerUrls, IReadOnlyList<string> ClientUrls, bool IsLearner);

/// <summary>Changes to the cluster's membership, through etcd's cluster API.</summary>
public sealed class EtcdClusterAdmin(EtcdClient client, ILogger logger)
{
    private static DateTime Deadline => DateTime.UtcNow + TimeSpan.FromSeconds(10);

    public async Task<IReadOnlyList<EtcdMemberInfo>> ListAsync(CancellationToken cancellationToken)
    {
        var response = await client.MemberListAsync(new MemberListRequest(), deadline: Deadline, cancellationToken: cancellationToken);
        return response.Members.Select(m => new EtcdMemberInfo(m.ID, m.Name, m.PeerURLs.ToList(), m.ClientURLs.ToList(), m.IsLearner)).ToList();
    }

    /// <summary>
    /// Adds a learner. etcd refuses membership changes until every member has been connected for a few seconds
    /// ("unhealthy cluster", as right after the previous join): that is waited out.
    /// </summary>
    public async Task<ulong> AddLearnerAsync(string peerUrl, CancellationToken cancellationToken)
    {
        var request = new MemberAddRequest { IsLearner = true };
        request.PeerURLs.Add(peerUrl);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            try
            {
                var response = await client.MemberAddAsync(request, deadline: Deadline, cancellationToken: cancellationToken);
                logger.LogInformation("Added etcd learner {Id:x} at {Url}", response.Member.ID, peerUrl);
                return response.Member.ID;
            }
            catch (RpcException ex) when (ex.Status.Detail.Contains("unhealthy cluster", StringComparison.OrdinalIgnoreCase) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(500, cancellationToken);
            }
        }
    }

    /// <summary>
    /// Promotes a learner to voter once it has caught up with the leader (etcd refuses until then), retrying until
    /// <paramref name="timeout"/>.
    /// </summary>
    public async Task PromoteAsync(ulong memberId, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            try
            {
                await client.MemberPromoteAsync(new MemberPromoteRequest { ID = memberId }, deadline: Deadline, cancellationToken: cancellationToken);
                logger.LogInformation("Promoted etcd member {Id:x} to voter", memberId);
                return;
            }
            catch (RpcException ex) when (ex.Status.Detail.Contains("not in sync", StringComparison.OrdinalIgnoreCase) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(300, cancellationToken);
            }
            catch (RpcException ex) when (ex.Status.Detail.Contains("only promote a learner", StringComparison.OrdinalIgnoreCase))
            {
                return; // already a voter
            }
        }
    }

    /// <summary>
    /// Removes a member. etcd refuses while the members that would remain have not all been connected for a few
    /// seconds ("unhealthy cluster", as right after a join): that is waited out, as for an addition.
    /// </summary>
    public async Task RemoveAsync(ulong memberId, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            try
            {
                await client.MemberRemoveAsync(new MemberRemoveRequest { ID = memberId }, deadline: Deadline, cancellationToken: cancellationToken);
                logger.LogInformation("Removed etcd member {Id:x}", memberId);
                return;
            }
            catch (RpcException ex) when (ex.Status.Detail.Contains("member not found", StringComparison.OrdinalIgnoreCase))
            {
                return;
            }
            catch (RpcException ex) when (ex.Status.Detail.Contains("unhealthy cluster", StringComparison.OrdinalIgnoreCase) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(500, cancellationToken);
            }
        }
    }

    /// <summary>etcd's <c>--initial-cluster</c> for a member joining: every started member, and the newcomer.</summary>
    public static string InitialCluster(IEnumerable<EtcdMemberInfo> members, string newName, string newPeerUrl) =>
        string.Join(',', members.Where(m => m.Name.Length > 0).SelectMany(m => m.PeerUrls.Select(u => $"{m.Name}={u}"))
            .Append($"{newName}={newPeerUrl}"));
}
