using Corral.Api.Messages;
using Corral.Model;
using Corral.PoolDatabase;
using Corral.PoolDatabase.Etcd.Maintenance;
using Corral.PoolDatabase.Etcd.Tls;

namespace Corral.Agent.Membership;

/// <summary>
/// One host's care of its etcd member's space (<see cref="PoolDatabaseCareOptions"/>): defragments the member once
/// compaction has left enough of its file free; recovers it from etcd's NOSPACE alarm (compaction up to the current
/// revision, defragmentation, then the alarm disarmed once the file is under its quota again, and a
/// <c>POOL_DATABASE_FULL</c> message saying since when the pool took no write); and carries a
/// <c>POOL_DATABASE_NEARLY_FULL</c> message about this host while the data in use nears the quota, destroyed once it
/// no longer does. Each host looks after its own member, so a defragmentation blocks one member at a time per host.
/// </summary>
public sealed class PoolDatabaseCare(string memberEndpoint, long quotaBytes, string hostUuid, IPoolDatabase database, PoolDatabaseCareOptions options,
    TimeProvider time, ILogger logger, EtcdTlsFiles? tls = null)
{
    public const string NearlyFull = "POOL_DATABASE_NEARLY_FULL";
    public const string Full = "POOL_DATABASE_FULL";

    private static readonly EventId Defragmented = new(1501, "PoolDatabaseDefragmented");
    private static readonly EventId OutOfSpace = new(1502, "PoolDatabaseOutOfSpace");
    private static readonly EventId AlarmDisarmed = new(1503, "PoolDatabaseAlarmDisarmed");
    private static readonly EventId SpaceMessage = new(1504, "PoolDatabaseSpaceMessage");

    private DateTime? _fullSince;

    /// <summary>One look at the member: defragments, recovers and raises or clears its message as needed.</summary>
    public async Task RunOnceAsync(CancellationToken cancellationToken)
    {
        using var member = new EtcdMemberMaintenance(memberEndpoint, tls);
        var status = await member.StatusAsync(cancellationToken);
        var alarms = await member.NoSpaceAlarmsAsync(cancellationToken);
        var space = new MemberSpace(status.FileBytes, status.InUseBytes, quotaBytes, alarms.Contains(status.MemberId));
        if (alarms.Count > 0 && _fullSince is null)
        {
            _fullSince = time.GetUtcNow().UtcDateTime;
            logger.LogCritical(OutOfSpace, "The pool database is out of space (etcd NOSPACE alarm on {Count} member(s)); it takes no write until "
                + "compaction and defragmentation free space. This member: {File} bytes in its file, {InUse} in use, quota {Quota}",
                alarms.Count, space.FileBytes, space.InUseBytes, quotaBytes);
        }

        if (space.NoSpace)
        {
            // The history up to now is what the alarm leaves to free: compacted away, its pages become free pages.
            await member.TryCompactAsync(status.Revision, cancellationToken);
        }

        if (SpacePolicy.ShouldDefragment(space, options))
        {
            await member.DefragmentAsync(cancellationToken);
            var after = await member.StatusAsync(cancellationToken);
            logger.LogInformation(Defragmented, "Defragmented this host's etcd member: its file went from {Before} to {After} bytes ({InUse} in use)",
                space.FileBytes, after.FileBytes, after.InUseBytes);
            space = space with { FileBytes = after.FileBytes, InUseBytes = after.InUseBytes };
        }

        if (alarms.Count > 0)
        {
            await DisarmAsync(member, status.MemberId, space, alarms, cancellationToken);
            if ((await member.NoSpaceAlarmsAsync(cancellationToken)).Count > 0)
            {
                return;
            }
        }

        await RecordAsync(space with { NoSpace = false }, cancellationToken);
    }

    /// <summary>
    /// Disarms each NOSPACE alarm whose member is back under its quota, this one's from what it just measured; a member
    /// that cannot be asked is disarmed too (a dead member must not keep the pool from writing; back, it raises the
    /// alarm again if it still is over).
    /// </summary>
    private async Task DisarmAsync(EtcdMemberMaintenance member, ulong self, MemberSpace space, IReadOnlyList<ulong> alarms, CancellationToken cancellationToken)
    {
        var endpoints = await member.MemberEndpointsAsync(cancellationToken);
        foreach (var id in alarms)
        {
            long file;
            if (id == self)
            {
                file = space.FileBytes;
            }
            else
            {
                try
                {
                    using var other = new EtcdMemberMaintenance(endpoints.GetValueOrDefault(id) ?? throw new InvalidOperationException($"member {id:x} is not listed"), tls);
                    file = (await other.StatusAsync(cancellationToken)).FileBytes;
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    file = 0;
                }
            }

            if (SpacePolicy.MayDisarm(space with { FileBytes = file }, options))
            {
                await member.DisarmNoSpaceAsync(id, cancellationToken);
                logger.LogWarning(AlarmDisarmed, "Disarmed the NOSPACE alarm of etcd member {Member:x} ({File} bytes in its file, quota {Quota})", id, file, quotaBytes);
            }
        }
    }

    /// <summary>The pool messages: the full episode just ended, and this host's nearly-full message raised or destroyed.</summary>
    private async Task RecordAsync(MemberSpace space, CancellationToken cancellationToken)
    {
        var mine = (await database.GetAllAsync(XenApi.Message.ClassName, cancellationToken))
            .Where(m => m.Get(XenApi.Message.ObjUuid) == hostUuid && m.Get(XenApi.Message.Name) == NearlyFull)
            .ToList();
        var raise = SpacePolicy.NearlyFull(mine.Count > 0, space, options);
        var tx = new PoolTransaction();
        var now = time.GetUtcNow().UtcDateTime;
        if (_fullSince is { } since)
        {
            PoolMessages.Create(tx, Full, 1L, Cls.Host, hostUuid,
                $"The pool database was out of space (etcd's NOSPACE alarm) from {since:u} to {now:u} and took no write meanwhile; compaction and "
                + $"defragmentation brought this host's member to {space.FileBytes} bytes ({space.InUseBytes} in use) of its {space.QuotaBytes}-byte quota.",
                now);
        }

        if (raise && mine.Count == 0)
        {
            PoolMessages.Create(tx, NearlyFull, 2L, Cls.Host, hostUuid,
                $"The pool database holds {space.InUseBytes} bytes on this host's etcd member, {100.0 * space.InUseBytes / space.QuotaBytes:0}% of its "
                + $"{space.QuotaBytes}-byte quota (Corral:Etcd:Member:QuotaBytes); at the quota the pool takes no more writes.", now);
        }
        else if (!raise)
        {
            mine.ForEach(tx.Delete);
        }

        if (tx.IsEmpty)
        {
            return;
        }

        await database.CommitAsync(tx, cancellationToken);
        logger.LogInformation(SpaceMessage, "Pool database space on this host: {InUse} of {Quota} bytes in use; nearly-full message {State}{Full}",
            space.InUseBytes, space.QuotaBytes, raise ? "raised" : "cleared", _fullSince is null ? "" : "; the out-of-space episode recorded");
        _fullSince = null;
    }
}
