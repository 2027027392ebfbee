using Corral.Api.Dispatch;
using Corral.Api.Methods;
using Corral.Api.Sessions;
using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Corral.Api.Https;

/// <summary>
/// The host's HTTPS server certificate, as xapi replaces it (xapi_host.ml): <c>host.install_server_certificate</c>
/// (an administrator's certificate, key and chain, checked as xapi checks them; refused while HA is on, as xapi),
/// <c>host.reset_server_certificate</c> (a new self-signed one) and <c>host.emergency_reset_server_certificate</c>
/// (the same on the host called, without the pool database, for a host whose certificate no client accepts). A call
/// for another host is made on that host, with the caller's session. The file is written first, then the certificate
/// is served from the next handshake on (connections open keep theirs), then its <c>Certificate</c> record replaces the
/// old one, which is what the other hosts and xe trust from then on.
/// </summary>
public sealed class ServerCertificateMethods(
    IPoolDatabase database,
    HostCertificate certificate,
    HostCertificateRecords records,
    HostCertificateSubjects subjects,
    HostForwarding forwarding,
    IOptions<HttpsOptions> https,
    IOptions<ApiOptions> api,
    TimeProvider time,
    ILogger<ServerCertificateMethods> logger) : IApiMethodProvider
{
    private readonly Lock _replacing = new();

    public void Register(ApiRegistry registry)
    {
        registry.Implement("host.install_server_certificate", (ctx, a, ct) =>
            OnHostAsync(ctx, (string)a[0]!, "host.install_server_certificate", [a[1], a[2], a[3]],
                () => InstallAsync((string)a[1]!, (string)a[2]!, (string)a[3]!, ct), ct, RefuseWithHaAsync));
        registry.Implement("host.reset_server_certificate", (ctx, a, ct) =>
            OnHostAsync(ctx, (string)a[0]!, "host.reset_server_certificate", [], () => ResetAsync(emergency: false, ct), ct));
        registry.Implement("host.emergency_reset_server_certificate", (_, _, ct) => ResetAsync(emergency: true, ct));
    }

    /// <summary>As xapi's install: not while HA is on.</summary>
    private async Task RefuseWithHaAsync(CancellationToken cancellationToken)
    {
        if ((await database.GetAllAsync(XenClasses.Pool, cancellationToken)).SingleOrDefault()?.Get(XenApi.Pool.HaEnabled) == true)
        {
            throw new XenApiException(ErrorCodes.HaIsEnabled);
        }
    }

    /// <summary>
    /// Once the host is known (HANDLE_INVALID first, as xapi's forwarding) and <paramref name="check"/> passed: runs
    /// <paramref name="here"/> when the host is this one, else the same call on that host.
    /// </summary>
    private async Task<object?> OnHostAsync(CallContext context, string hostRef, string method, IReadOnlyList<object?> arguments,
        Func<Task> here, CancellationToken cancellationToken, Func<CancellationToken, Task>? check = null)
    {
        var host = await database.GetArgumentAsync(XenClasses.Host, hostRef, cancellationToken);
        if (check is not null)
        {
            await check(cancellationToken);
        }

        if (host.Ref == api.Value.HostRef)
        {
            await here();
        }
        else
        {
            await forwarding.CallAsync(host, method, [context.SessionRef, host.Ref, .. arguments], cancellationToken);
        }

        return null;
    }

    private async Task InstallAsync(string certificatePem, string privateKeyPem, string chainPem, CancellationToken cancellationToken)
    {
        var installed = ServerCertificateValidation.Validate(certificatePem, privateKeyPem, chainPem, time.GetUtcNow());
        await ReplaceAsync(() =>
        {
            HostCertificateFile.Install(https.Value.CertificatePath, installed);
            certificate.Replace(installed.Certificate, installed.Chain);
            logger.LogWarning(HttpsEvents.CertificateInstalled, "Installed the server certificate {Subject} (issued by {Issuer}, valid until {NotAfter:u}, SHA-256 {Fingerprint}, {Chain} chain certificate(s)) in {Path}",
                installed.Certificate.Subject, installed.Certificate.Issuer, installed.Certificate.NotAfter.ToUniversalTime(), certificate.Fingerprint,
                installed.Chain.Count, https.Value.CertificatePath);
        }, recordNow: true, cancellationToken);
    }

    private Task<object?> ResetAsync(bool emergency, CancellationToken cancellationToken) => ReplaceAsync(() =>
    {
        var made = HostCertificateFile.Reset(https.Value.CertificatePath, subjects, https.Value.CertificateValidityDays, time);
        certificate.Replace(made, []);
        logger.LogWarning(HttpsEvents.CertificateReset, "{How}: a new self-signed server certificate for {Subjects} (SHA-256 {Fingerprint}) in {Path}",
            emergency ? "Emergency reset of the server certificate" : "Server certificate reset", subjects, certificate.Fingerprint, https.Value.CertificatePath);
    }, recordNow: !emergency, cancellationToken);

    /// <summary>
    /// One replacement at a time on this host; then the record (at once, or for an emergency reset by
    /// <see cref="HostCertificateRecords"/> once the pool database answers).
    /// </summary>
    private async Task<object?> ReplaceAsync(Action replace, bool recordNow, CancellationToken cancellationToken)
    {
        lock (_replacing)
        {
            replace();
        }

        if (recordNow)
        {
            await records.RecordAsync(cancellationToken);
        }

        return null;
    }
}
