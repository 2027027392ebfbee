using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;

namespace Corral.Api.Https;

/// <summary>
/// The host's server certificate file, as XenServer's gencert makes <c>xapi-ssl.pem</c>: at first start a self-signed
/// certificate (RSA 2048, SHA-256, valid ten years) naming the host's name and management address, its private key
/// and certificate in one PEM file readable by its owner only (0400); reused on every later start. A certificate this
/// host made itself is made anew when the host's name or address changed, as its subject would no longer be the host;
/// one an administrator installed (not self-signed) is kept.
/// </summary>
public static class HostCertificateFile
{
    private const int KeyBits = 2048;
    private const UnixFileMode OwnerReadOnly = UnixFileMode.UserRead;

    public static HostCertificate LoadOrCreate(string path, HostCertificateSubjects subjects, int validityDays, TimeProvider time, ILogger logger)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(subjects);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(logger);
        if (File.Exists(path))
        {
            var (existing, chain) = TryLoad(path, logger);
            if (existing is not null)
            {
                if (Names(existing, subjects))
                {
                    logger.LogInformation(HttpsEvents.CertificateReused, "Serving the host certificate {Path} ({Subject}, SHA-256 {Fingerprint})",
                        path, existing.Subject, Client.Tls.CertificateFingerprint.Sha256(existing));
                    return new HostCertificate(existing, path, chain);
                }

                if (!IsSelfSigned(existing))
                {
                    logger.LogWarning(HttpsEvents.CertificateKeptDespiteNames,
                        "The installed certificate {Path} ({Subject}) does not name this host as it is now ({Subjects}); keeping it, as it was not made here",
                        path, existing.Subject, subjects);
                    return new HostCertificate(existing, path, chain);
                }

                logger.LogWarning(HttpsEvents.CertificateRegenerated,
                    "The host's name or address changed (its certificate names {Old}, the host is now {Subjects}): making a new certificate; clients that pinned the old one will warn",
                    SubjectNames(existing), subjects);
                existing.Dispose();
            }
        }

        var created = Create(subjects, validityDays, time);
        Write(path, created.KeyPem, created.Certificate, []);
        logger.LogInformation(HttpsEvents.CertificateCreated, "Made the host certificate {Path} for {Subjects} (self-signed, valid until {NotAfter:u}, SHA-256 {Fingerprint})",
            path, subjects, created.Certificate.NotAfter.ToUniversalTime(), Client.Tls.CertificateFingerprint.Sha256(created.Certificate));
        return new HostCertificate(created.Certificate, path);
    }

    /// <summary>
    /// Writes a new self-signed certificate for the subjects in place of the host's (<c>host.reset_server_certificate</c>)
    /// and returns it, with its key.
    /// </summary>
    public static X509Certificate2 Reset(string path, HostCertificateSubjects subjects, int validityDays, TimeProvider time)
    {
        var (certificate, keyPem) = Create(subjects, validityDays, time);
        Write(path, keyPem, certificate, []);
        return certificate;
    }

    /// <summary>Writes an administrator's certificate in place of the host's: key, certificate, chain, as xapi writes them.</summary>
    public static void Install(string path, InstalledServerCertificate installed)
    {
        ArgumentNullException.ThrowIfNull(installed);
        Write(path, installed.KeyPem, installed.Certificate, installed.Chain);
    }

    /// <summary>A new self-signed certificate for the subjects, with its private key in PKCS#8 PEM.</summary>
    public static (X509Certificate2 Certificate, string KeyPem) Create(HostCertificateSubjects subjects, int validityDays, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(subjects);
        ArgumentNullException.ThrowIfNull(time);
        using var rsa = RSA.Create(KeyBits);
        var name = new X500DistinguishedNameBuilder();
        name.AddCommonName(subjects.CommonName);
        var request = new CertificateRequest(name.Build(), rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var alternative = new SubjectAlternativeNameBuilder();
        foreach (var dns in subjects.DnsNames)
        {
            alternative.AddDnsName(dns);
        }

        foreach (var ip in subjects.IpAddresses)
        {
            alternative.AddIpAddress(ip);
        }

        request.CertificateExtensions.Add(alternative.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1", "Server Authentication")], false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        // Valid from now, to the second, for ten years, as gencert makes it.
        var now = time.GetUtcNow();
        var notBefore = now.AddTicks(-(now.Ticks % TimeSpan.TicksPerSecond));
        var certificate = request.CreateSelfSigned(notBefore, notBefore.AddDays(validityDays));
        return (certificate, rsa.ExportPkcs8PrivateKeyPem());
    }

    /// <summary>
    /// Reads a key-and-certificate PEM file, and the chain after the certificate if any; null (logged, the file set
    /// aside) when it cannot be used.
    /// </summary>
    private static (X509Certificate2? Certificate, IReadOnlyList<X509Certificate2> Chain) TryLoad(string path, ILogger logger)
    {
        try
        {
            var text = File.ReadAllText(path);
            var certificate = X509Certificate2.CreateFromPem(text, text);
            if (certificate.HasPrivateKey)
            {
                // The chain: the file's other certificates (its first is the certificate again, read above with its key).
                var all = new X509Certificate2Collection();
                all.ImportFromPem(text);
                all[0].Dispose();
                return (certificate, all.Skip(1).ToList());
            }

            certificate.Dispose();
            throw new CryptographicException("the file holds no private key");
        }
        catch (CryptographicException ex)
        {
            var aside = path + ".unusable";
            File.Move(path, aside, overwrite: true);
            logger.LogError(HttpsEvents.CertificateUnreadable, ex, "The host certificate {Path} cannot be used ({Reason}); set aside as {Aside}, making a new one",
                path, ex.Message, aside);
            return (null, []);
        }
    }

    /// <summary>Key, certificate, then chain, as xapi writes xapi-ssl.pem, replacing the file in one rename; mode 0400.</summary>
    private static void Write(string path, string keyPem, X509Certificate2 certificate, IReadOnlyList<X509Certificate2> chain)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var parts = new[] { keyPem, certificate.ExportCertificatePem() }.Concat(chain.Select(c => c.ExportCertificatePem()));
        Corral.Platform.PrivateFile.Replace(path, string.Join("\n\n", parts) + "\n", OwnerReadOnly);
    }

    private static bool IsSelfSigned(X509Certificate2 certificate) => certificate.SubjectName.RawData.AsSpan().SequenceEqual(certificate.IssuerName.RawData);

    private static bool Names(X509Certificate2 certificate, HostCertificateSubjects subjects)
    {
        var (dns, ips) = AlternativeNames(certificate);
        return subjects.SameAs(dns, ips);
    }

    private static (IReadOnlyList<string> Dns, IReadOnlyList<IPAddress> Ips) AlternativeNames(X509Certificate2 certificate)
    {
        var extension = certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().FirstOrDefault();
        return extension is null ? ([], []) : (extension.EnumerateDnsNames().ToList(), extension.EnumerateIPAddresses().ToList());
    }

    private static string SubjectNames(X509Certificate2 certificate)
    {
        var (dns, ips) = AlternativeNames(certificate);
        return string.Join(", ", dns.Concat(ips.Select(i => i.ToString())));
    }
}
