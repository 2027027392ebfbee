using System.Security.Cryptography;
using System.Text;
using Corral.Api.Methods;
using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Corral.Api.Sessions;

/// <summary>
/// <c>pool.rotate_secret</c>, in xapi's three phases (Xapi_psr: every host accepts the new secret, every host sends
/// it, the old one is dropped) on the pool database: one transaction makes the new secret current and keeps the old
/// one as <see cref="PreviousKey"/>, which every host still accepts (<see cref="SessionService.SlaveLoginAsync"/>);
/// each host takes the new one into its local copy and says so under <see cref="TakenPrefix"/> (a hash, never the
/// secret); once every host has, the previous one is deleted and refused from then on. A host that does not take it
/// in time fails the call with CANNOT_CONTACT_HOST and the previous secret stays accepted until it does (any host
/// that sees every host has taken it finishes the rotation), as a failed xapi rotation resumes.
/// </summary>
public sealed class PoolSecretRotation(IPoolDatabase database, LocalCredentials local, Placement placement, IOptions<ApiOptions> options,
    ILogger<PoolSecretRotation> logger)
{
    public const string PreviousKey = PoolKeys.Auth + "pool-secret-previous";
    public const string TakenPrefix = PoolKeys.Auth + "pool-secret-taken/";
    private static readonly EventId Rotated = new(1310, "PoolSecretRotated");
    private static readonly EventId Finished = new(1311, "PoolSecretRotationFinished");
    private static readonly EventId Taken = new(1312, "PoolSecretTaken");

    /// <summary>How long the call waits for every host to take the new secret.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(60);

    public static string Fingerprint(string secret) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));

    /// <summary>The call: xapi's checks (HA off, every host reachable), the new secret, then waits until the rotation is over.</summary>
    public async Task RotateAsync(CancellationToken cancellationToken)
    {
        var pools = await database.GetAllAsync(XenClasses.Pool, cancellationToken);
        var pool = pools.Count > 0 ? pools[0] : null;
        if (pool?.Get(XenApi.Pool.HaEnabled) == true)
        {
            throw new XenApiException(ErrorCodes.HaIsEnabled);
        }

        foreach (var host in await database.GetAllAsync(XenClasses.Host, cancellationToken))
        {
            if (!await placement.IsLiveAsync(host, cancellationToken))
            {
                throw new XenApiException(ErrorCodes.CannotContactHost, host.Ref);
            }
        }

        // A rotation left unfinished is finished first: its previous secret may still be some host's only one.
        await WaitFinishedAsync(cancellationToken);
        var (current, revision) = await database.Leases.GetWithRevisionAsync(SessionService.PoolSecretKey, cancellationToken);
        if (current is null)
        {
            throw new XenApiException(ErrorCodes.InternalError, "the pool has no secret yet");
        }

        var next = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        var tx = new PoolTransaction();
        tx.Require(SessionService.PoolSecretKey, revision);
        tx.PutKey(SessionService.PoolSecretKey, next);
        tx.PutKey(PreviousKey, current);
        if (!await database.TryCommitAsync(tx, cancellationToken))
        {
            throw new XenApiException(ErrorCodes.OtherOperationInProgress, XenClasses.Pool, pool?.Ref ?? OpaqueRef.Null);
        }

        logger.LogWarning(Rotated, "The pool secret was replaced; the previous one is accepted until every host has taken the new one");
        await SyncAsync(cancellationToken);
        await WaitFinishedAsync(cancellationToken);
        // This host's copy without the previous secret at once; the others drop it at their next sync.
        await SyncAsync(cancellationToken);
    }

    /// <summary>
    /// What every host does every few seconds: takes the pool's secrets into its local copy, says it has the current one,
    /// and ends a rotation that every host has taken.
    /// </summary>
    public async Task SyncAsync(CancellationToken cancellationToken)
    {
        var current = await database.Leases.GetValueAsync(SessionService.PoolSecretKey, cancellationToken);
        if (current is null)
        {
            return;
        }

        var previous = await database.Leases.GetValueAsync(PreviousKey, cancellationToken);
        local.RememberPoolSecrets(current, previous);
        var fingerprint = Fingerprint(current);
        var takenKey = TakenPrefix + options.Value.HostRef;
        if (await database.Leases.GetValueAsync(takenKey, cancellationToken) != fingerprint)
        {
            await database.Leases.PutDurableAsync(takenKey, fingerprint, cancellationToken);
            logger.LogInformation(Taken, "This host now sends the pool's current secret");
        }

        if (previous is not null && await NotTakenAsync(fingerprint, cancellationToken) is null
            && await database.Leases.DeleteIfValueAsync(PreviousKey, previous, cancellationToken))
        {
            logger.LogInformation(Finished, "Every host has the new pool secret: the previous one is no longer accepted");
        }
    }

    /// <summary>A host that has not said it has the current secret, or null when all have.</summary>
    private async Task<string?> NotTakenAsync(string fingerprint, CancellationToken cancellationToken)
    {
        var taken = await database.Leases.GetPrefixAsync(TakenPrefix, cancellationToken);
        return (await database.GetAllAsync(XenClasses.Host, cancellationToken))
            .Select(h => h.Ref).FirstOrDefault(h => taken.GetValueOrDefault(TakenPrefix + h) != fingerprint);
    }

    private async Task WaitFinishedAsync(CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (await database.Leases.GetValueAsync(PreviousKey, cancellationToken) is not null)
        {
            await SyncAsync(cancellationToken);
            if (await database.Leases.GetValueAsync(PreviousKey, cancellationToken) is null)
            {
                return;
            }

            if (DateTime.UtcNow > deadline)
            {
                var current = await database.Leases.GetValueAsync(SessionService.PoolSecretKey, cancellationToken) ?? "";
                var missing = await NotTakenAsync(Fingerprint(current), cancellationToken) ?? OpaqueRef.Null;
                throw new XenApiException(ErrorCodes.CannotContactHost, missing);
            }

            await Task.Delay(TimeSpan.FromMilliseconds(500), cancellationToken);
        }
    }
}
