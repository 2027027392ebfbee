using System.Security.Cryptography.X509Certificates;
using Corral.Api.Client.Tls;

namespace Corral.Api.Https;

/// <summary>The host's server certificate, with its private key, as served on the HTTPS port.</summary>
public sealed class HostCertificate(X509Certificate2 certificate, string path)
{
    public X509Certificate2 Certificate { get; } = certificate;

    /// <summary>The file it was read from (key and certificate).</summary>
    public string Path { get; } = path;

    /// <summary>The certificate alone in PEM, as <c>host.get_server_certificate</c> returns it.</summary>
    public string Pem { get; } = certificate.ExportCertificatePem() + "\n";

    /// <summary>Its SHA-256 fingerprint as xapi writes it in <c>Certificate.fingerprint</c>.</summary>
    public string Fingerprint { get; } = CertificateFingerprint.Sha256(certificate);
}
