using Corral.Api.Dispatch;
using Corral.Api.Operations;
using Corral.Api.Sessions;
using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.Extensions.Logging;

namespace Corral.Api.Methods;

/// <summary>
/// Rotation of the pool's internal credentials, with xapi's messages: <c>host.refresh_server_certificate</c> (the host's
/// certificate of the pool's CA, the one its etcd member serves and presents, replaced by a new key and certificate;
/// the old one revoked), <c>pool.certificate_sync</c> (every host writes its TLS files, revocation list and trusted CA
/// certificates from the pool database now, as xapi's internal <c>host.certificate_sync</c> on each), and <c>pool.rotate_secret</c>
/// (<see cref="PoolSecretRotation"/>). The certificate work runs on the host concerned, as a persisted operation.
/// </summary>
public sealed class CertificateRotationMethods(
    IPoolDatabase database,
    Placement placement,
    HostOperationQueue operations,
    CertificateDistribution distribution,
    PoolSecretRotation rotation,
    ILogger<CertificateRotationMethods> logger) : IApiMethodProvider
{
    private static readonly EventId Refreshing = new(1565, "HostCertificateRefreshRequested");

    public void Register(ApiRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        registry.Implement("host.refresh_server_certificate", async (ctx, a, ct) =>
        {
            await RefreshAsync(ctx, (string)a[0]!, ct);
            return null;
        });
        registry.Implement("pool.certificate_sync", async (ctx, _, ct) =>
        {
            await distribution.SyncLiveHostsAsync(ctx, except: null, ct);
            return null;
        });
        registry.Implement("pool.rotate_secret", async (_, _, ct) =>
        {
            await rotation.RotateAsync(ct);
            return null;
        });
    }

    /// <summary>
    /// As xapi: the host refreshes its certificate first (and records it, revoking the old one), then every other host
    /// takes the change (the revocation list) at once rather than at its next periodic sync.
    /// </summary>
    private async Task RefreshAsync(CallContext context, string hostRef, CancellationToken cancellationToken)
    {
        var host = await LiveHostAsync(hostRef, cancellationToken);
        logger.LogInformation(Refreshing, "host.refresh_server_certificate of {Host}", host.Get(XenApi.Host.NameLabel));
        await operations.RunAsync(HostOperationKinds.HostRefreshServerCertificate, host.Ref, host.Ref, new Dictionary<string, string>(), context, cancellationToken);
        await distribution.SyncLiveHostsAsync(context, except: host.Ref, cancellationToken);
    }

    private async Task<XenObject> LiveHostAsync(string hostRef, CancellationToken cancellationToken)
    {
        var host = await database.GetArgumentAsync(XenClasses.Host, hostRef, cancellationToken);
        if (!await placement.IsLiveAsync(host, cancellationToken))
        {
            throw new XenApiException(ErrorCodes.HostOffline, host.Ref);
        }

        return host;
    }
}
