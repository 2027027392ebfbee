using Corral.Model;
using static Corral.Model.PoolAllowedOperations;

namespace Corral.Api.AllowedOperations;

/// <summary>Everything the pool rules read.</summary>
public sealed record PoolFacts
{
    public required string Ref { get; init; }

    public InProgress<PoolAllowedOperations> CurrentOperations { get; init; } = InProgress.None<PoolAllowedOperations>();

    public bool HaEnabled { get; init; }

    public string HaClusterStack { get; init; } = "";

    /// <summary>A Cluster object exists.</summary>
    public bool ClusterExists { get; init; }

    public bool RollingUpgrade { get; init; }
}

/// <summary>
/// Which operations the pool allows, as xapi decides them (xapi_pool_helpers): a "blocking" operation in progress
/// makes the others of its kind fail at once with its own error; "waiting" operations queue behind anything.
/// </summary>
public static class PoolOperationRules
{
    public static readonly IReadOnlyList<PoolAllowedOperations> Candidates = Enum.GetValues<PoolAllowedOperations>();

    /// <summary>The blocking operations in xapi's order, each with the error it gives the others.</summary>
    private static readonly (PoolAllowedOperations Op, string Error)[] Blocking =
    [
        (HaEnable, "HA_ENABLE_IN_PROGRESS"), (HaDisable, "HA_DISABLE_IN_PROGRESS"), (ClusterCreate, "CLUSTER_CREATE_IN_PROGRESS"),
        (DesignateNewMaster, "DESIGNATE_NEW_MASTER_IN_PROGRESS"), (TlsVerificationEnable, "TLS_VERIFICATION_ENABLE_IN_PROGRESS"),
        (ConfigureRepositories, "CONFIGURE_REPOSITORIES_IN_PROGRESS"), (SyncUpdates, "SYNC_UPDATES_IN_PROGRESS"), (ApplyUpdates, "APPLY_UPDATES_IN_PROGRESS"),
    ];

    private static readonly PoolAllowedOperations[] Waiting =
        [CertRefresh, ExchangeCertificatesOnJoin, ExchangeCaCertificatesOnJoin, CopyPrimaryHostCerts, Eject, GetUpdates];

    public static IReadOnlyList<PoolAllowedOperations> Allowed(PoolFacts pool, ImplementedOperations implemented) =>
        Candidates.Where(op => implemented.Has(op) && Check(pool, op) is null).ToList();

    public static OperationError? Check(PoolFacts pool, PoolAllowedOperations op)
    {
        var current = pool.CurrentOperations;
        var waiting = current.First(o => Waiting.Contains(o));
        var blocking = Blocking.FirstOrDefault(b => current.Contains(b.Op));
        if (blocking.Error is not null)
        {
            if (Blocking.Any(b => b.Op == op))
            {
                return OperationError.Of(blocking.Error);
            }

            return waiting is { } w ? Queued(pool, w) : OperationError.Of(ErrorCodes.OtherOperationInProgress, XenClasses.Pool, pool.Ref);
        }

        if (waiting is { } queued)
        {
            return Queued(pool, queued);
        }

        return op switch
        {
            HaEnable or TlsVerificationEnable when pool.HaEnabled => OperationError.Of(ErrorCodes.HaIsEnabled),
            HaDisable when !pool.HaEnabled => OperationError.Of(ErrorCodes.HaNotEnabled),
            ClusterCreate or TlsVerificationEnable when pool.RollingUpgrade => OperationError.Of(ErrorCodes.NotSupportedDuringUpgrade),
            ClusterCreate when pool.ClusterExists => OperationError.Of("CLUSTER_ALREADY_EXISTS"),
            ClusterCreate when pool.HaEnabled => OperationError.Of("INCOMPATIBLE_CLUSTER_STACK_ACTIVE", pool.HaClusterStack),
            _ => null,
        };
    }

    private static OperationError Queued(PoolFacts pool, KeyValuePair<string, PoolAllowedOperations> entry) =>
        OperationError.Of(ErrorCodes.OtherOperationInProgress, XenClasses.Pool, pool.Ref, XenEnum.ToWire(XenEnumTypes.PoolAllowedOperations, entry.Value), entry.Key);
}
