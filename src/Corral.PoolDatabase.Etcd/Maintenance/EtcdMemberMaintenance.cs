using Corral.PoolDatabase.Etcd.Tls;
using Etcdserverpb;
using Grpc.Core;

namespace Corral.PoolDatabase.Etcd.Maintenance;

/// <summary>A member's status as its maintenance API gives it.</summary>
public sealed record MemberStatus(ulong MemberId, long Revision, long FileBytes, long InUseBytes);

/// <summary>
/// etcd's maintenance API on one member (status, defragmentation, compaction, alarms), over its own endpoint, with this
/// host's certificate when the endpoint is https.
/// </summary>
public sealed class EtcdMemberMaintenance(string endpoint, EtcdTlsFiles? tls = null) : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private readonly EtcdConnection _connection = new([endpoint], tls);

    public string Endpoint => endpoint;

    private static DateTime Deadline => DateTime.UtcNow + Timeout;

    public async Task<MemberStatus> StatusAsync(CancellationToken cancellationToken)
    {
        var status = await _connection.Client.StatusAsync(new StatusRequest(), deadline: Deadline, cancellationToken: cancellationToken);
        return new MemberStatus(status.Header.MemberId, status.Header.Revision, status.DbSize, status.DbSizeInUse);
    }

    /// <summary>The members holding a NOSPACE alarm (the alarm list is the cluster's, whichever member answers).</summary>
    public async Task<IReadOnlyList<ulong>> NoSpaceAlarmsAsync(CancellationToken cancellationToken)
    {
        var response = await _connection.Client.AlarmAsync(new AlarmRequest { Action = AlarmRequest.Types.AlarmAction.Get, Alarm = AlarmType.None },
            deadline: Deadline, cancellationToken: cancellationToken);
        return response.Alarms.Where(a => a.Alarm == AlarmType.Nospace).Select(a => a.MemberID).ToList();
    }

    public Task DefragmentAsync(CancellationToken cancellationToken) =>
        _connection.Client.DefragmentAsync(new DefragmentRequest(), deadline: Deadline, cancellationToken: cancellationToken);

    /// <summary>Compacts the history up to <paramref name="revision"/>; false when it already was (a lost race, not an error).</summary>
    public async Task<bool> TryCompactAsync(long revision, CancellationToken cancellationToken)
    {
        try
        {
            await _connection.Client.CompactAsync(new CompactionRequest { Revision = revision, Physical = true }, deadline: Deadline, cancellationToken: cancellationToken);
            return true;
        }
        catch (RpcException ex) when (ex.Status.Detail.Contains("has been compacted", StringComparison.Ordinal))
        {
            return false;
        }
    }

    public Task DisarmNoSpaceAsync(ulong memberId, CancellationToken cancellationToken) =>
        _connection.Client.AlarmAsync(new AlarmRequest { Action = AlarmRequest.Types.AlarmAction.Deactivate, MemberID = memberId, Alarm = AlarmType.Nospace },
            deadline: Deadline, cancellationToken: cancellationToken);

    /// <summary>The client endpoints of the cluster's members, by member id.</summary>
    public async Task<IReadOnlyDictionary<ulong, string>> MemberEndpointsAsync(CancellationToken cancellationToken)
    {
        var response = await _connection.Client.MemberListAsync(new MemberListRequest(), deadline: Deadline, cancellationToken: cancellationToken);
        return response.Members.Where(m => m.ClientURLs.Count > 0).ToDictionary(m => m.ID, m => m.ClientURLs[0]);
    }

    public void Dispose() => _connection.Dispose();
}
