using System.Security.Cryptography.X509Certificates;
using Corral.Api.Client;
using Corral.Api.Client.Tls;
using Corral.Api.Https;
using Corral.Api.Sessions;
using Corral.PoolDatabase;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Corral.Api.Pool;

/// <summary>
/// Calls from this host to another host's XenAPI, as xapi's hosts call one another: over HTTPS, the other host's
/// certificate checked against the pool's host certificates (<see cref="PoolCertificateTrust"/>), never accepted just
/// because it was presented. The exceptions are <see cref="ConnectToJoin"/> (a host joining a pool does not know that
/// pool's certificates yet, as in xapi's <c>pool.join</c>) and a host whose administrator turned checking off on it
/// (<see cref="TlsVerification"/>, xapi's <c>host.emergency_disable_tls_verification</c>), which says so in its log.
/// </summary>
public sealed class RemoteHosts(IOptions<ApiOptions> options, PoolCertificateTrust trust, ILogger<RemoteHosts>? logger = null, IPoolDatabase? database = null,
    TlsVerification? verification = null)
{
    private static readonly TimeSpan RefreshLimit = TimeSpan.FromSeconds(2);
    private readonly ILogger _logger = logger ?? NullLogger<RemoteHosts>.Instance;

    /// <summary>
    /// A client for the pool host at <paramref name="address"/> (<c>host</c> or <c>host:port</c>; the pool's HTTPS port
    /// by default). The pool's certificates are read again first when the pool database can be reached.
    /// </summary>
    public async Task<JsonRpcXenApiClient> ConnectAsync(string address, CancellationToken cancellationToken)
    {
        if (database is not null)
        {
            try
            {
                // Briefly: with quorum lost (a recovery) the database does not answer, and the copy on disk is what counts.
                using var brief = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                brief.CancelAfter(RefreshLimit);
                await trust.RefreshAsync(database, brief.Token);
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
            {
                // Out of reach (a recovery with quorum lost): the certificates last read stay trusted.
                _logger.LogDebug(ex, "Could not read the pool's certificates; using those last read");
            }
        }

        var (host, port) = Split(address);
        return new JsonRpcXenApiClient(JsonRpcXenApiClient.EndpointFor(host, port, secure: true),
            PinnedTls.CreateHandler(certificate => Check(address, certificate), JsonRpcXenApiClient.ConnectTimeout), userAgent: "corral-agent");
    }

    /// <summary>
    /// A client for the master of a pool this host is joining, whose certificates it does not know yet: the certificate
    /// the master presents is accepted and noted in <paramref name="presented"/>, for the caller to check against that
    /// pool's <c>Certificate</c> records once logged in (<see cref="CheckJoinedMaster"/>).
    /// </summary>
    public JsonRpcXenApiClient ConnectToJoin(string address, PresentedCertificate presented)
    {
        ArgumentNullException.ThrowIfNull(presented);
        var (host, port) = Split(address);
        return new JsonRpcXenApiClient(JsonRpcXenApiClient.EndpointFor(host, port, secure: true),
            PinnedTls.CreateHandler(certificate => presented.Fingerprint = CertificateFingerprint.Sha256(certificate), JsonRpcXenApiClient.ConnectTimeout),
            userAgent: "corral-agent");
    }

    /// <summary>
    /// After logging in to a pool's master: the certificate it presented must be that master's, by the pool's own
    /// records (which the joining host trusts from then on: <see cref="TrustPool"/>).
    /// </summary>
    public static void CheckJoinedMaster(string masterRef, PresentedCertificate presented, IReadOnlyList<PoolHostCertificate> poolCertificates)
    {
        ArgumentNullException.ThrowIfNull(presented);
        ArgumentNullException.ThrowIfNull(poolCertificates);
        if (!poolCertificates.Any(c => c.HostRef == masterRef && CertificateFingerprint.Same(c.Fingerprint, presented.Fingerprint)))
        {
            throw new CertificateRejectedException(
                $"The master presented a certificate (SHA-256 {presented.Fingerprint}) that is not its own by the pool's Certificate records");
        }
    }

    /// <summary>Trusts exactly these host certificates from now on (the pool this host joins).</summary>
    public void TrustPool(IEnumerable<PoolHostCertificate> poolCertificates) => trust.Replace(poolCertificates);

    private void Check(string address, X509Certificate2 certificate)
    {
        var fingerprint = CertificateFingerprint.Sha256(certificate);
        if (!trust.IsTrusted(fingerprint) && verification is { Enabled: false })
        {
            _logger.LogWarning(HttpsEvents.PeerCertificateUnchecked,
                "Accepted the certificate of the host at {Address} (SHA-256 {Fingerprint}) unchecked: TLS verification is disabled on this host", address, fingerprint);
            return;
        }

        if (!trust.IsTrusted(fingerprint))
        {
            _logger.LogWarning(HttpsEvents.PeerCertificateRefused,
                "Refused the certificate of the host at {Address} (SHA-256 {Fingerprint}): not one of the pool's {Count} host certificates", address, fingerprint, trust.Count);
            throw new CertificateRejectedException(
                $"The host at {address} presented a certificate (SHA-256 {fingerprint}) that is not one of the pool's host certificates");
        }
    }

    private (string Host, int Port) Split(string address)
    {
        var port = options.Value.PeerPort;
        var host = address;
        var colon = address.LastIndexOf(':');
        if (colon > 0 && !address.EndsWith(']') && address.Count(c => c == ':') == 1 && int.TryParse(address[(colon + 1)..], out var p))
        {
            host = address[..colon];
            port = p;
        }

        return (host, port);
    }
}

/// <summary>The fingerprint of the certificate a server presented on a connection accepted without pinning.</summary>
public sealed class PresentedCertificate
{
    public string Fingerprint { get; set; } = "";
}
