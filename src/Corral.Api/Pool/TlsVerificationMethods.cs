using Corral.Api.AllowedOperations;
using Corral.Api.Dispatch;
using Corral.Api.Methods;
using Corral.Api.Sessions;
using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Corral.Api.Pool;

/// <summary>
/// TLS verification between the pool's hosts, with xapi's messages (xapi_pool.ml, xapi_host.ml). A Corral pool verifies
/// from its creation: each host checks the others' certificates against the pool's <c>Certificate</c> records, so
/// <c>pool.tls_verification_enabled</c> is true (<see cref="PoolRecord"/>) and clients such as XenCenter, which offer to
/// enable it when it is not, have nothing to offer. <c>host.emergency_disable_tls_verification</c> turns checking off
/// on the host called alone (<see cref="TlsVerification"/>); <c>host.emergency_reenable_tls_verification</c> and
/// <c>pool.enable_tls_verification</c> (on every host, from the master) turn it on again. Each host's
/// <c>tls_verification_enabled</c> says what it does.
/// </summary>
public sealed class TlsVerificationMethods(
    IPoolDatabase database,
    TlsVerification verification,
    OperationMarks marks,
    HostForwarding forwarding,
    IOptions<ApiOptions> options,
    ILogger<TlsVerificationMethods> logger) : IApiMethodProvider
{
    public void Register(ApiRegistry registry)
    {
        registry.Implement("host.emergency_disable_tls_verification", (_, _, ct) => EmergencyDisableAsync(ct));
        registry.Implement("host.emergency_reenable_tls_verification", (_, _, ct) => EmergencyReenableAsync(ct));
        registry.Implement("pool.enable_tls_verification", EnableAsync);
    }

    /// <summary>
    /// As xapi: checking stops on this host first; the host's record follows if the pool database answers, else
    /// INTERNAL_ERROR says that verification is off but the record could not be updated.
    /// </summary>
    private async Task<object?> EmergencyDisableAsync(CancellationToken cancellationToken)
    {
        verification.Disable();
        try
        {
            await RecordAsync(options.Value.HostRef, false, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            logger.LogWarning(ex, "TLS verification is disabled here, but this host's record could not say so");
            throw new XenApiException(ErrorCodes.InternalError,
                "TLS verification disabled successfully. Failed to contact the coordinator to update the database.");
        }

        return null;
    }

    /// <summary>As xapi: only where the pool verifies (the pool's flag unread counts as verifying).</summary>
    private async Task<object?> EmergencyReenableAsync(CancellationToken cancellationToken)
    {
        bool poolVerifies;
        try
        {
            poolVerifies = (await database.GetAllAsync(XenClasses.Pool, cancellationToken)).SingleOrDefault()?.Get(XenApi.Pool.TlsVerificationEnabled) != false;
        }
        catch (Exception ex) when (database.IsUnavailable(ex))
        {
            poolVerifies = true;
        }

        if (!poolVerifies)
        {
            throw new XenApiException(ErrorCodes.TlsVerificationNotEnabledInPool);
        }

        verification.Enable();
        await RecordAsync(options.Value.HostRef, true, cancellationToken);
        return null;
    }

    /// <summary>
    /// On the master: under the pool's <c>tls_verification_enable</c> operation (refused with HA on or during a rolling
    /// upgrade, as xapi), each host turns checking on, itself here and the others through this same call made on
    /// them (a host that cannot be reached fails it with HOST_OFFLINE, as in xapi), then the pool says it verifies. On a
    /// host called so, its own part alone.
    /// </summary>
    private async Task<object?> EnableAsync(CallContext context, object?[] arguments, CancellationToken cancellationToken)
    {
        var pool = (await database.GetAllAsync(XenClasses.Pool, cancellationToken)).Single();
        if (pool.Get(XenApi.Pool.Master) != options.Value.HostRef)
        {
            verification.Enable();
            await RecordAsync(options.Value.HostRef, true, cancellationToken);
            return null;
        }

        await using (await marks.MarkPoolAsync(context, PoolAllowedOperations.TlsVerificationEnable, cancellationToken))
        {
            foreach (var host in await database.GetAllAsync(XenClasses.Host, cancellationToken))
            {
                if (host.Ref == options.Value.HostRef)
                {
                    verification.Enable();
                    await RecordAsync(host.Ref, true, cancellationToken);
                }
                else
                {
                    await forwarding.CallAsync(host, "pool.enable_tls_verification", [context.SessionRef], cancellationToken);
                }
            }

            await database.UpdateAsync([(XenClasses.Pool, pool.Ref)], (objs, tx) =>
            {
                if (!objs[0].Get(XenApi.Pool.TlsVerificationEnabled))
                {
                    var p = objs[0].Clone();
                    p.Set(XenApi.Pool.TlsVerificationEnabled, true);
                    tx.Update(p);
                }
            }, cancellationToken);
        }

        return null;
    }

    private Task RecordAsync(string hostRef, bool enabled, CancellationToken cancellationToken) =>
        TlsVerification.RecordAsync(database, hostRef, enabled, cancellationToken);
}
