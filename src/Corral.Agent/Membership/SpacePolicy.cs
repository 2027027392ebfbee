using Corral.Api;

namespace Corral.Agent.Membership;

/// <summary>
/// How each host looks after its etcd member's space (<c>Corral:Etcd:Care</c>). etcd's periodic compaction
/// (<see cref="Corral.PoolDatabase.Etcd.Membership.EtcdMemberOptions.HistoryRetention"/>) frees pages inside the database file but never shrinks
/// it, and the quota counts the file: without defragmentation a member reaches its NOSPACE alarm, after which the
/// cluster takes no write, with far less data than its quota.
/// </summary>
public sealed class PoolDatabaseCareOptions : IOptionsWithProblems
{
    /// <summary>How often the member's space is looked at.</summary>
    public TimeSpan CheckEvery { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Defragment once this share of the file is free pages (and at least <see cref="DefragmentMinimumBytes"/>).</summary>
    public double DefragmentFreeShare { get; set; } = 0.25;

    /// <summary>Below this much free space a defragmentation gains nothing worth blocking the member for.</summary>
    public long DefragmentMinimumBytes { get; set; } = 16L << 20;

    /// <summary>A pool message (<c>POOL_DATABASE_NEARLY_FULL</c>) once the data in use reaches this share of the quota...</summary>
    public double WarnAtShare { get; set; } = 0.8;

    /// <summary>...destroyed once it is back under this share.</summary>
    public double ClearAtShare { get; set; } = 0.7;

    /// <summary>A NOSPACE alarm is disarmed only once the member's file is under this share of its quota again.</summary>
    public double DisarmBelowShare { get; set; } = 0.9;

    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (CheckEvery < TimeSpan.FromSeconds(1) || CheckEvery > TimeSpan.FromHours(1))
        {
            problems.Add("Corral:Etcd:Care:CheckEvery must be between 1 second and 1 hour");
        }

        if (DefragmentFreeShare is <= 0 or >= 1 || DefragmentMinimumBytes < 0)
        {
            problems.Add("Corral:Etcd:Care:DefragmentFreeShare must be between 0 and 1 (exclusive), DefragmentMinimumBytes not negative");
        }

        if (!(ClearAtShare > 0 && ClearAtShare < WarnAtShare && WarnAtShare < DisarmBelowShare && DisarmBelowShare < 1))
        {
            problems.Add("Corral:Etcd:Care needs 0 < ClearAtShare < WarnAtShare < DisarmBelowShare < 1: the message must clear below where it "
                + "is raised, and be raised before the alarm could be");
        }

        return problems;
    }
}

/// <summary>One member's space, from etcd's status and alarm list.</summary>
/// <param name="FileBytes">The database file (<c>dbSize</c>), what the quota counts.</param>
/// <param name="InUseBytes">The pages holding data (<c>dbSizeInUse</c>); the rest is free after compaction.</param>
/// <param name="QuotaBytes">The member's <c>--quota-backend-bytes</c>.</param>
/// <param name="NoSpace">Whether the cluster holds a NOSPACE alarm for this member.</param>
public sealed record MemberSpace(long FileBytes, long InUseBytes, long QuotaBytes, bool NoSpace);

/// <summary>The decisions of the pool database's care, pure so that they are tested apart from etcd.</summary>
public static class SpacePolicy
{
    /// <summary>Whether to defragment: the member is out of space, or enough of its file is free pages.</summary>
    public static bool ShouldDefragment(MemberSpace space, PoolDatabaseCareOptions options)
    {
        var free = space.FileBytes - space.InUseBytes;
        return space.NoSpace || (free >= options.DefragmentMinimumBytes && free >= options.DefragmentFreeShare * space.FileBytes);
    }

    /// <summary>
    /// Whether the pool should carry a "nearly full" message for this member, given whether it does: raised at
    /// <see cref="PoolDatabaseCareOptions.WarnAtShare"/> of the quota in use, cleared under
    /// <see cref="PoolDatabaseCareOptions.ClearAtShare"/>, kept as it is in between, so that it does not flap.
    /// </summary>
    public static bool NearlyFull(bool raised, MemberSpace space, PoolDatabaseCareOptions options)
    {
        var share = (double)space.InUseBytes / space.QuotaBytes;
        return space.NoSpace || share >= options.WarnAtShare || (raised && share > options.ClearAtShare);
    }

    /// <summary>Whether a member's NOSPACE alarm may be disarmed: its file is back under the disarm share of its quota.</summary>
    public static bool MayDisarm(MemberSpace space, PoolDatabaseCareOptions options) =>
        space.FileBytes < options.DisarmBelowShare * space.QuotaBytes;
}
