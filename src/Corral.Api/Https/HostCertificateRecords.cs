using Corral.Api.Pool;
using Corral.Api.Sessions;
using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Corral.Api.Https;

/// <summary>
/// Keeps this host's <c>Certificate</c> record in the pool database true to the certificate it serves, as xapi syncs
/// its certificates at start: one record of type <c>host</c> for this host, with the certificate's validity and
/// SHA-256 fingerprint (a changed certificate gets a new record and the old one goes), and its PEM beside it for
/// <c>host.get_server_certificate</c>. Then, every few seconds, the pool's host certificates become the ones this host
/// trusts when it calls another host (<see cref="PoolCertificateTrust"/>), and <c>host.tls_verification_enabled</c>
/// says whether this host checks them (always, unless turned off here: <see cref="TlsVerification"/>).
/// </summary>
public sealed class HostCertificateRecords(
    IPoolDatabase database,
    HostCertificate certificate,
    PoolCertificateTrust trust,
    TlsVerification verification,
    IOptions<ApiOptions> options,
    ILogger<HostCertificateRecords> logger) : BackgroundService
{
    private static readonly TimeSpan Period = TimeSpan.FromSeconds(10);
    private readonly TaskCompletionSource _recorded = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile string? _recordedFingerprint;

    /// <summary>Completes once this host's record matches its certificate.</summary>
    public Task Recorded => _recorded.Task;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Period);
        do
        {
            try
            {
                // Once per start, as xapi (a host ejected from the pool must not write its record back before it
                // restarts), and again when the certificate served is replaced (an emergency reset, made without the
                // pool database, is recorded once the database answers).
                if (!_recorded.Task.IsCompleted || _recordedFingerprint != certificate.Fingerprint)
                {
                    await RecordAsync(stoppingToken);
                    _recorded.TrySetResult();
                }

                await trust.RefreshAsync(database, stoppingToken);
                await ShowVerificationAsync(stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                logger.LogWarning(HttpsEvents.CertificateRecordNotWritten, ex, "Could not bring the pool's certificate records up to date; retrying");
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    /// <summary>
    /// Sets this host's <c>tls_verification_enabled</c> to what it does, once its record exists (a host record written
    /// while the pool database was out of reach, after an emergency change, is brought in line here).
    /// </summary>
    private async Task ShowVerificationAsync(CancellationToken cancellationToken)
    {
        if (await database.TryGetAsync(XenClasses.Host, options.Value.HostRef, cancellationToken) is { } host
            && host.Get(XenApi.Host.TlsVerificationEnabled) != verification.Enabled)
        {
            await TlsVerification.RecordAsync(database, host.Ref, verification.Enabled, cancellationToken);
        }
    }

    /// <summary>Creates this host's record if it has none for the certificate it serves, and removes those of certificates it no longer serves.</summary>
    public async Task RecordAsync(CancellationToken cancellationToken)
    {
        var hostRef = options.Value.HostRef;
        var served = certificate.Current;
        var (current, stale) = HostCertificateRecord.Find(await database.GetAllAsync(XenApi.Certificate.ClassName, cancellationToken), hostRef,
            CertificateType.Host, served.Fingerprint);
        var pemMissing = current is not null && await database.Leases.GetValueAsync(PoolKeys.CertificatePem(current.Ref), cancellationToken) is null;
        if (current is not null && stale.Count == 0 && !pemMissing)
        {
            _recordedFingerprint = served.Fingerprint;
            return;
        }

        var tx = new PoolTransaction();
        if (current is null)
        {
            HostCertificateRecord.Add(tx, hostRef, CertificateType.Host, served.Certificate, served.Fingerprint, served.Pem);
        }
        else if (pemMissing)
        {
            tx.PutKey(PoolKeys.CertificatePem(current.Ref), served.Pem);
        }

        foreach (var old in stale)
        {
            tx.Delete(old);
            tx.DeleteKey(PoolKeys.CertificatePem(old.Ref));
        }

        await database.CommitAsync(tx, cancellationToken);
        _recordedFingerprint = served.Fingerprint;
        logger.LogInformation(HttpsEvents.CertificateRecordReplaced, "This host's certificate record now names SHA-256 {Fingerprint} ({Removed} old record(s) removed)",
            served.Fingerprint, stale.Count);
    }
}
