using Corral.Agent.Operations;
using Corral.Api.Https;
using Corral.Api.Operations;
using Corral.Api.Pool;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Agent.Membership;

/// <summary>
/// <c>host.refresh_server_certificate</c> and <c>host.certificate_sync</c> on the host concerned. A refresh makes a new
/// key, has the pool's CA (every host holds it) sign a certificate for it with the same names, and installs both; the
/// member serves it from its next handshake and the agent's clients present it from their next connection, with no
/// restart (<see cref="Corral.PoolDatabase.Etcd.Tls.EtcdTlsFiles.Refresh"/>); running VMs keep the copies they started
/// with, new VMs and migrations take the new one. Then the old certificate's record goes and it is revoked
/// (<see cref="PoolTlsSync"/>). A sync rewrites this host's TLS files, revocation list and trusted CAs from the database.
/// </summary>
public sealed class CertificateRefreshHandler(
    IPoolDatabase database,
    PoolTlsSync sync,
    TrustedCaDirectory trustedCas,
    PoolCertificateTrust trust,
    TimeProvider time,
    ILogger<CertificateRefreshHandler> logger,
    PoolTlsHost? tls = null) : IHostOperationHandler
{
    /// <summary>The step after the new files are in place: a resumed refresh only records and revokes.</summary>
    public const string ReplacedStep = "replaced";

    private static readonly EventId Refreshed = new(1569, "HostCertificateRefreshed");

    public IReadOnlyCollection<string> Kinds { get; } = [HostOperationKinds.HostRefreshServerCertificate, HostOperationKinds.HostCertificateSync];

    public async Task<string?> ExecuteAsync(HostOperation operation, OperationProgress progress, CancellationToken cancellationToken)
    {
        if (operation.Kind == HostOperationKinds.HostCertificateSync)
        {
            await sync.SyncAsync(cancellationToken);
            await trustedCas.SyncAsync(cancellationToken);
            await trust.RefreshAsync(database, cancellationToken);
            return null;
        }

        if (tls is null || !tls.Files.Exists)
        {
            throw new XenApiException(ErrorCodes.InternalError, "this host has no certificate of the pool's CA to refresh (its agent runs no etcd member)");
        }

        if (operation.Step != ReplacedStep)
        {
            // The certificate in use recorded first, so that the one replaced now is the one revoked, even after a crash.
            await sync.SyncAsync(cancellationToken);
            var (old, replacement) = tls.Files.Refresh(tls.Member.Name, tls.Names, time);
            using (old)
            using (replacement)
            {
                logger.LogWarning(Refreshed, "This host's etcd certificate was replaced: serial {Old} by {New}, valid until {NotAfter:u}",
                    old.SerialNumber, replacement.SerialNumber, replacement.NotAfter.ToUniversalTime());
            }

            await progress.StepAsync(ReplacedStep, cancellationToken);
        }

        await sync.SyncAsync(cancellationToken);
        return null;
    }
}
