using System.Security.Cryptography.X509Certificates;
using Corral.Api.Client.Tls;

namespace Corral.Cli.Api;

/// <summary>
/// Which server certificates xe accepts over HTTPS, as XenCenter does with XenServer's self-signed certificates:
/// the first one a server presents is trusted and remembered (<see cref="KnownServers"/>), the same one is accepted
/// afterwards, and a different one is refused with what to do, since either the server got a new certificate or
/// someone is in the middle.
/// </summary>
public sealed class ServerCertificateTrust(KnownServers known, TextWriter notes)
{
    public KnownServers Known => known;

    /// <summary>Accepts the certificate <paramref name="server"/> presented, or throws <see cref="CertificateRejectedException"/>.</summary>
    public void Check(string server, int port, X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        var presented = CertificateFingerprint.Sha256(certificate);
        var trusted = known.Find(server, port);
        if (trusted is null)
        {
            known.Remember(server, port, presented);
            notes.Write(known.Path is null
                ? $"Note: the certificate of {server}:{port} (SHA-256 {presented}) is accepted without being remembered (no home directory).\n"
                : $"Note: first connection to {server}:{port}; its certificate (SHA-256 {presented}) is trusted from now on (kept in {known.Path}).\n");
            return;
        }

        if (!CertificateFingerprint.Same(trusted, presented))
        {
            throw new CertificateRejectedException(ChangedMessage(server, port, trusted, presented));
        }
    }

    private string ChangedMessage(string server, int port, string trusted, string presented) =>
        $"The certificate of {server}:{port} has changed: xe trusts SHA-256 {trusted}, the server presented SHA-256 {presented}.\n"
        + "Either the host has a new certificate (its name or address changed, or it was replaced) or someone is intercepting the connection.\n"
        + "Compare with the host's own: openssl x509 -noout -fingerprint -sha256 -in <its state directory>/xapi-ssl.pem (on the host).\n"
        + $"If it is the host's, accept it by removing the line starting with \"{KnownServers.LineStart(server, port)}\" from {known.Path}, then run the command again.";
}
