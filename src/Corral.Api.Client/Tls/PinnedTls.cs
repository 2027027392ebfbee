using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;

namespace Corral.Api.Client.Tls;

/// <summary>
/// HTTPS to a XenAPI server whose certificate is self-signed, as XenServer's are: the certificate is trusted when a
/// check accepts it (its fingerprint pinned: known to the caller, or learnt on first use), not by a certificate
/// authority or by the name in it. TLS 1.2 and 1.3.
/// </summary>
public static class PinnedTls
{
    public const SslProtocols Protocols = SslProtocols.Tls12 | SslProtocols.Tls13;

    /// <summary>
    /// A handler whose connections accept the server's certificate when <paramref name="check"/> returns; the check
    /// throws <see cref="CertificateRejectedException"/> to refuse it.
    /// </summary>
    public static SocketsHttpHandler CreateHandler(Action<X509Certificate2> check, TimeSpan connectTimeout)
    {
        ArgumentNullException.ThrowIfNull(check);
        return new SocketsHttpHandler
        {
            ConnectTimeout = connectTimeout,
            SslOptions = new SslClientAuthenticationOptions
            {
                EnabledSslProtocols = Protocols,
                RemoteCertificateValidationCallback = (_, certificate, _, _) => Accept(certificate, check),
            },
        };
    }

    private static bool Accept(X509Certificate? presented, Action<X509Certificate2> check)
    {
        if (presented is null)
        {
            throw new CertificateRejectedException("The server presented no certificate.");
        }

        // The chain and the name are not what makes the certificate trusted here: its fingerprint is.
        if (presented is X509Certificate2 certificate)
        {
            check(certificate);
            return true;
        }

        using var copy = X509CertificateLoader.LoadCertificate(presented.GetRawCertData());
        check(copy);
        return true;
    }
}
