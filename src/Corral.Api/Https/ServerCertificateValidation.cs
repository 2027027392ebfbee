using System.Formats.Asn1;
using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Corral.Model;

namespace Corral.Api.Https;

/// <summary>A server certificate an administrator installs, checked: its key (PKCS#8 PEM), the certificate, its chain.</summary>
/// <param name="KeyPem">The key, re-encoded in PKCS#8 PEM.</param>
public sealed record InstalledServerCertificate(string KeyPem, X509Certificate2 Certificate, IReadOnlyList<X509Certificate2> Chain);

/// <summary>
/// The checks of <c>host.install_server_certificate</c>, in xapi's order and with its errors (ocaml/gencert/lib.ml):
/// the key first (an RSA key of 2048 to 4096 bits, two primes), then the certificate (PEM X.509, valid now, for that
/// key, signed with SHA-256 or SHA-512), then the chain (PEM certificates, at least one, when given).
/// </summary>
public static class ServerCertificateValidation
{
    private const string RsaOid = "1.2.840.113549.1.1.1";
    private const string EcOid = "1.2.840.10045.2.1";
    private const string Ed25519Oid = "1.3.101.112";

    // sha256WithRSAEncryption, sha512WithRSAEncryption, ecdsa-with-SHA256, ecdsa-with-SHA512: what xapi accepts.
    private static readonly HashSet<string> Signatures = ["1.2.840.113549.1.1.11", "1.2.840.113549.1.1.13", "1.2.840.10045.4.3.2", "1.2.840.10045.4.3.4"];

    public static InstalledServerCertificate Validate(string certificatePem, string privateKeyPem, string chainPem, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(certificatePem);
        ArgumentNullException.ThrowIfNull(privateKeyPem);
        ArgumentNullException.ThrowIfNull(chainPem);
        using var key = PrivateKey(privateKeyPem);
        var certificate = Leaf(certificatePem, key, now);
        try
        {
            return new InstalledServerCertificate(key.ExportPkcs8PrivateKeyPem(), certificate, chainPem.Length == 0 ? [] : Chain(chainPem));
        }
        catch
        {
            certificate.Dispose();
            throw;
        }
    }

    /// <summary>A time as xapi writes it in these errors (RFC 3339, UTC).</summary>
    public static string Rfc3339(DateTimeOffset time) => time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private static RSA PrivateKey(string pem)
    {
        var (label, der) = OnePem(pem) ?? throw new XenApiException(ErrorCodes.ServerCertificateKeyInvalid);
        byte[] rsaKey;
        try
        {
            rsaKey = label switch
            {
                "PRIVATE KEY" => Pkcs8RsaKey(der),
                "RSA PRIVATE KEY" => der,
                _ => throw new XenApiException(ErrorCodes.ServerCertificateKeyInvalid),
            };
        }
        catch (AsnContentException)
        {
            throw new XenApiException(ErrorCodes.ServerCertificateKeyInvalid);
        }

        if (TwoPrimeVersion(rsaKey) is not 0)
        {
            throw new XenApiException(ErrorCodes.ServerCertificateKeyRsaMultiNotSupported);
        }

        var rsa = RSA.Create();
        try
        {
            rsa.ImportRSAPrivateKey(rsaKey, out _);
        }
        catch (CryptographicException)
        {
            rsa.Dispose();
            throw new XenApiException(ErrorCodes.ServerCertificateKeyInvalid);
        }

        if (rsa.KeySize is < 2048 or > 4096)
        {
            var bits = rsa.KeySize;
            rsa.Dispose();
            throw new XenApiException(ErrorCodes.ServerCertificateKeyRsaLengthNotSupported, bits.ToString(CultureInfo.InvariantCulture));
        }

        return rsa;
    }

    /// <summary>The RSAPrivateKey inside a PKCS#8 PrivateKeyInfo; SERVER_CERTIFICATE_KEY_ALGORITHM_NOT_SUPPORTED for another algorithm.</summary>
    private static byte[] Pkcs8RsaKey(byte[] der)
    {
        var info = new AsnReader(der, AsnEncodingRules.DER).ReadSequence();
        info.ReadInteger();
        var algorithm = info.ReadSequence();
        var oid = algorithm.ReadObjectIdentifier();
        if (oid != RsaOid)
        {
            throw new XenApiException(ErrorCodes.ServerCertificateKeyAlgorithmNotSupported, AlgorithmName(oid, algorithm));
        }

        return info.ReadOctetString();
    }

    /// <summary>As xapi names a key type it refuses: its curve for EC keys, ED25519, else the algorithm's OID.</summary>
    private static string AlgorithmName(string oid, AsnReader parameters) => oid switch
    {
        Ed25519Oid => "ED25519",
        EcOid when parameters.HasData && parameters.PeekTag() == Asn1Tag.ObjectIdentifier => parameters.ReadObjectIdentifier() switch
        {
            "1.2.840.10045.3.1.7" => "P256",
            "1.3.132.0.34" => "P384",
            "1.3.132.0.35" => "P521",
            "1.3.132.0.33" => "P224",
            var curve => curve,
        },
        _ => oid,
    };

    /// <summary>RSAPrivateKey's version: 0 for two primes, 1 for more (RFC 8017).</summary>
    private static int? TwoPrimeVersion(byte[] rsaKey)
    {
        try
        {
            return new AsnReader(rsaKey, AsnEncodingRules.DER).ReadSequence().TryReadInt32(out var version) ? version : null;
        }
        catch (AsnContentException)
        {
            throw new XenApiException(ErrorCodes.ServerCertificateKeyInvalid);
        }
    }

    private static X509Certificate2 Leaf(string pem, RSA key, DateTimeOffset now)
    {
        if (OnePem(pem) is not ("CERTIFICATE", var der))
        {
            throw new XenApiException(ErrorCodes.ServerCertificateInvalid);
        }

        X509Certificate2 certificate;
        try
        {
            certificate = X509CertificateLoader.LoadCertificate(der);
        }
        catch (CryptographicException)
        {
            throw new XenApiException(ErrorCodes.ServerCertificateInvalid);
        }

        try
        {
            if (now < certificate.NotBefore.ToUniversalTime())
            {
                throw new XenApiException(ErrorCodes.ServerCertificateNotValidYet, Rfc3339(now), Rfc3339(certificate.NotBefore));
            }

            if (now > certificate.NotAfter.ToUniversalTime())
            {
                throw new XenApiException(ErrorCodes.ServerCertificateExpired, Rfc3339(now), Rfc3339(certificate.NotAfter));
            }

            using var publicKey = certificate.GetRSAPublicKey();
            if (publicKey is null || !publicKey.ExportParameters(false).Modulus.AsSpan().SequenceEqual(key.ExportParameters(false).Modulus))
            {
                throw new XenApiException(ErrorCodes.ServerCertificateKeyMismatch);
            }

            if (!Signatures.Contains(certificate.SignatureAlgorithm.Value ?? ""))
            {
                throw new XenApiException(ErrorCodes.ServerCertificateSignatureNotSupported);
            }

            var withKey = certificate.CopyWithPrivateKey(key);
            certificate.Dispose();
            return withKey;
        }
        catch
        {
            certificate.Dispose();
            throw;
        }
    }

    private static List<X509Certificate2> Chain(string pem)
    {
        var chain = new List<X509Certificate2>();
        try
        {
            foreach (var (label, der) in AllPem(pem))
            {
                if (label != "CERTIFICATE")
                {
                    throw new XenApiException(ErrorCodes.ServerCertificateChainInvalid);
                }

                chain.Add(X509CertificateLoader.LoadCertificate(der));
            }
        }
        catch (Exception ex) when (ex is CryptographicException or XenApiException)
        {
            chain.ForEach(c => c.Dispose());
            throw new XenApiException(ErrorCodes.ServerCertificateChainInvalid);
        }

        return chain.Count > 0 ? chain : throw new XenApiException(ErrorCodes.ServerCertificateChainInvalid);
    }

    /// <summary>The one PEM block of <paramref name="text"/>, or null when there is none or more than one.</summary>
    private static (string Label, byte[] Der)? OnePem(string text)
    {
        var all = AllPem(text);
        return all.Count == 1 ? all[0] : null;
    }

    private static List<(string Label, byte[] Der)> AllPem(string text)
    {
        var blocks = new List<(string, byte[])>();
        var rest = text.AsMemory();
        while (PemEncoding.TryFind(rest.Span, out var fields))
        {
            var block = rest.Span;
            var der = new byte[fields.DecodedDataLength];
            if (!Convert.TryFromBase64Chars(block[fields.Base64Data], der, out var written))
            {
                break;
            }

            blocks.Add((block[fields.Label].ToString(), der[..written]));
            rest = rest[fields.Location.End..];
        }

        return rest.Span.Trim().IsEmpty ? blocks : [];
    }
}
