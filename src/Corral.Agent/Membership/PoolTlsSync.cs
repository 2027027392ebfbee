using Corral.Agent.Hosting;
using Corral.Api.Https;
using Corral.Api.Sessions;
using Corral.Model;
using Corral.PoolDatabase;
using Corral.PoolDatabase.Etcd.Membership;
using Corral.PoolDatabase.Etcd.Tls;

namespace Corral.Agent.Membership;

/// <summary>This host's pool TLS files and the member options its certificate is made for (hosts that run an etcd member).</summary>
public sealed record PoolTlsHost(EtcdTlsFiles Files, EtcdMemberOptions Member)
{
    /// <summary>The names a new certificate of this host carries: its member's name and addresses (loopback is added by the CA).</summary>
    public IReadOnlyList<string> Names => PoolCertificateAuthority.NamesFor(Member.Name, Member.PeerUrl, Member.ClientUrl);
}

/// <summary>
/// Keeps this host's share of the pool's credentials true to the pool database, every few seconds and on demand
/// (<c>host.certificate_sync</c>): the pool secret (<see cref="PoolSecretRotation.SyncAsync"/>); this host's
/// <c>Certificate</c> record of type <c>host_internal</c> for its etcd certificate, as xapi records its internal
/// certificate (a replaced certificate's record goes, and the certificate is revoked in the same transaction); and the
/// pool's revocation list, written where the member reads it at each connection.
/// </summary>
public sealed class PoolTlsSync(
    IPoolDatabase database,
    PoolSecretRotation secret,
    HostIdentity identity,
    TimeProvider time,
    ILogger<PoolTlsSync> logger,
    PoolTlsHost? tls = null) : BackgroundService
{
    private static readonly TimeSpan Period = TimeSpan.FromSeconds(10);
    private static readonly EventId Recorded = new(1566, "HostInternalCertificateRecorded");
    private static readonly EventId ListWritten = new(1567, "RevocationListWritten");
    private static readonly EventId NotSynced = new(1568, "PoolCredentialsNotSynced");
    private readonly SemaphoreSlim _one = new(1, 1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Period, time);
        do
        {
            try
            {
                await SyncAsync(stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                logger.LogWarning(NotSynced, ex, "Could not bring this host's pool credentials up to date; retrying");
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    public async Task SyncAsync(CancellationToken cancellationToken)
    {
        await _one.WaitAsync(cancellationToken);
        try
        {
            await secret.SyncAsync(cancellationToken);
            if (tls is not null && tls.Files.Exists)
            {
                await RecordCertificateAsync(tls.Files, cancellationToken);
                var revoked = await PoolCertificateRevocations.ReadAsync(database, cancellationToken);
                if (tls.Files.WriteRevocationList(revoked, time))
                {
                    logger.LogInformation(ListWritten, "The pool's revocation list here now names {Count} certificate(s)", revoked.Count);
                }
            }
        }
        finally
        {
            _one.Release();
        }
    }

    /// <summary>One <c>host_internal</c> record for the certificate in the files; others of this host's are removed and revoked.</summary>
    private async Task RecordCertificateAsync(EtcdTlsFiles files, CancellationToken cancellationToken)
    {
        if (await database.TryGetAsync(XenClasses.Host, identity.Ref, cancellationToken) is null)
        {
            // Not (or no longer) a host of this pool's database: an ejected host must not write its record back.
            return;
        }

        using var certificate = files.LoadCertificate();
        var fingerprint = Corral.Api.Client.Tls.CertificateFingerprint.Sha256(certificate);
        var (current, stale) = HostCertificateRecord.Find(await database.GetAllAsync(XenApi.Certificate.ClassName, cancellationToken), identity.Ref,
            CertificateType.HostInternal, fingerprint);
        if (current is not null && stale.Count == 0)
        {
            return;
        }

        var tx = new PoolTransaction();
        if (current is null)
        {
            HostCertificateRecord.Add(tx, identity.Ref, CertificateType.HostInternal, certificate, fingerprint, certificate.ExportCertificatePem());
        }

        foreach (var old in stale)
        {
            PoolCertificateRevocations.Revoke(tx, await database.Leases.GetValueAsync(PoolKeys.CertificatePem(old.Ref), cancellationToken), time.GetUtcNow());
            tx.Delete(old);
            tx.DeleteKey(PoolKeys.CertificatePem(old.Ref));
        }

        await database.CommitAsync(tx, cancellationToken);
        logger.LogInformation(Recorded, "This host's etcd certificate, serial {Serial}, is recorded ({Revoked} replaced one(s) revoked)",
            certificate.SerialNumber, stale.Count);
    }

    public override void Dispose()
    {
        _one.Dispose();
        base.Dispose();
    }
}
