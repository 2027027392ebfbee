using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Corral.Api.Client.Tls;

namespace Corral.Api.Https;

/// <summary>
/// The host's server certificate, with its private key and the chain sent with it, as served on the HTTPS port. It is
/// replaced whole (<c>host.install_server_certificate</c>, <c>host.reset_server_certificate</c>): each TLS handshake
/// from then on presents the new one, connections already open keep the one they began with, as stunnel's reload.
/// </summary>
public sealed class HostCertificate
{
    private volatile Served _served;

    public HostCertificate(X509Certificate2 certificate, string path, IReadOnlyList<X509Certificate2>? chain = null)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        Path = path;
        _served = new Served(certificate, chain ?? []);
    }

    public X509Certificate2 Certificate => _served.Certificate;

    /// <summary>What a handshake presents: the certificate and its chain.</summary>
    public SslStreamCertificateContext Context => _served.Context;

    /// <summary>The file it was read from (key, certificate and chain).</summary>
    public string Path { get; }

    /// <summary>The certificate alone in PEM, as <c>host.get_server_certificate</c> returns it.</summary>
    public string Pem => _served.Pem;

    /// <summary>Its SHA-256 fingerprint as xapi writes it in <c>Certificate.fingerprint</c>.</summary>
    public string Fingerprint => _served.Fingerprint;

    /// <summary>The certificate served now, its fingerprint and PEM, read together (a replacement may come between two reads).</summary>
    public (X509Certificate2 Certificate, string Fingerprint, string Pem) Current
    {
        get
        {
            var served = _served;
            return (served.Certificate, served.Fingerprint, served.Pem);
        }
    }

    /// <summary>Serves <paramref name="certificate"/> from the next handshake on (its file written by the caller first).</summary>
    public void Replace(X509Certificate2 certificate, IReadOnlyList<X509Certificate2> chain)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        ArgumentNullException.ThrowIfNull(chain);
        _served = new Served(certificate, chain);
    }

    private sealed class Served(X509Certificate2 certificate, IReadOnlyList<X509Certificate2> chain)
    {
        public X509Certificate2 Certificate { get; } = certificate;

        public SslStreamCertificateContext Context { get; } =
            SslStreamCertificateContext.Create(certificate, new X509Certificate2Collection(chain.ToArray()), offline: true);

        public string Pem { get; } = certificate.ExportCertificatePem() + "\n";

        public string Fingerprint { get; } = CertificateFingerprint.Sha256(certificate);
    }
}
