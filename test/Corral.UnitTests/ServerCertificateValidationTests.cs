using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Corral.Api.Https;
using Corral.Model;
using Xunit;

namespace Corral.UnitTests;

/// <summary>host.install_server_certificate's checks, with xapi's errors and their parameters (ocaml/gencert/lib.ml).</summary>
public sealed class ServerCertificateValidationTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 7, 12, 0, 0, TimeSpan.Zero);

    private static (string CertificatePem, string KeyPem, X509Certificate2 Certificate) Make(AsymmetricAlgorithm key, DateTimeOffset? notBefore = null,
        DateTimeOffset? notAfter = null, HashAlgorithmName? hash = null, X509Certificate2? issuer = null)
    {
        var name = new X500DistinguishedName("CN=xennode01.example.com");
        var request = key switch
        {
            RSA rsa => new CertificateRequest(name, rsa, hash ?? HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1),
            ECDsa ec => new CertificateRequest(name, ec, hash ?? HashAlgorithmName.SHA256),
            _ => throw new ArgumentException("an RSA or ECDSA key", nameof(key)),
        };
        var from = notBefore ?? Now.AddDays(-1);
        var to = notAfter ?? Now.AddYears(1);
        var certificate = issuer is null ? request.CreateSelfSigned(from, to) : request.Create(issuer, from, to, [1, 2, 3, 4]);
        var keyPem = key switch { RSA rsa => rsa.ExportPkcs8PrivateKeyPem(), ECDsa ec => ec.ExportPkcs8PrivateKeyPem(), _ => "" };
        return (certificate.ExportCertificatePem(), keyPem, certificate);
    }

    private static XenApiException Refused(string certificate, string key, string chain = "") =>
        Assert.Throws<XenApiException>(() => ServerCertificateValidation.Validate(certificate, key, chain, Now));

    [Fact]
    public void An_rsa_certificate_valid_now_and_signed_with_sha256_is_accepted_with_its_key_and_chain()
    {
        using var caKey = RSA.Create(2048);
        var ca = new CertificateRequest("CN=Example CA", caKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        ca.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        using var caCertificate = ca.CreateSelfSigned(Now.AddYears(-1), Now.AddYears(5));
        using var key = RSA.Create(3072);
        var (pem, keyPem, certificate) = Make(key, issuer: caCertificate);

        var installed = ServerCertificateValidation.Validate(pem, keyPem, caCertificate.ExportCertificatePem(), Now);
        Assert.Equal(certificate.Thumbprint, installed.Certificate.Thumbprint);
        Assert.True(installed.Certificate.HasPrivateKey);
        Assert.Equal(caCertificate.Thumbprint, Assert.Single(installed.Chain).Thumbprint);
        Assert.StartsWith("-----BEGIN PRIVATE KEY-----", installed.KeyPem, StringComparison.Ordinal);

        // A PKCS#1 key ("RSA PRIVATE KEY") is read too, and an empty chain is none.
        Assert.Empty(ServerCertificateValidation.Validate(pem, key.ExportRSAPrivateKeyPem(), "", Now).Chain);
    }

    [Fact]
    public void Keys_that_are_not_rsa_of_2048_to_4096_bits_are_refused_first()
    {
        using var rsa = RSA.Create(2048);
        var (pem, _, _) = Make(rsa);
        using var small = RSA.Create(1024);
        Assert.Equal(["SERVER_CERTIFICATE_KEY_RSA_LENGTH_NOT_SUPPORTED", "1024"], Refused(pem, small.ExportPkcs8PrivateKeyPem()).ErrorDescription);
        using var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        Assert.Equal(["SERVER_CERTIFICATE_KEY_ALGORITHM_NOT_SUPPORTED", "P256"], Refused(pem, ec.ExportPkcs8PrivateKeyPem()).ErrorDescription);
        Assert.Equal(["SERVER_CERTIFICATE_KEY_INVALID"], Refused(pem, "not a key").ErrorDescription);
        Assert.Equal(["SERVER_CERTIFICATE_KEY_INVALID"], Refused(pem, pem).ErrorDescription);
        // The key is checked before the certificate, as xapi does.
        Assert.Equal(["SERVER_CERTIFICATE_KEY_INVALID"], Refused("garbage", "garbage").ErrorDescription);
    }

    [Fact]
    public void The_certificate_must_be_pem_valid_now_for_the_key_and_signed_with_sha256_or_sha512()
    {
        using var key = RSA.Create(2048);
        var keyPem = key.ExportPkcs8PrivateKeyPem();
        Assert.Equal(["SERVER_CERTIFICATE_INVALID"], Refused("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", keyPem).ErrorDescription);
        Assert.Equal(["SERVER_CERTIFICATE_INVALID"], Refused(keyPem, keyPem).ErrorDescription);

        var (expired, _, _) = Make(key, Now.AddYears(-2), Now.AddDays(-3));
        Assert.Equal(["SERVER_CERTIFICATE_EXPIRED", "2026-12-07T12:00:00Z", "2026-12-04T12:00:00Z"], Refused(expired, keyPem).ErrorDescription);
        var (future, _, _) = Make(key, Now.AddDays(2), Now.AddYears(1));
        Assert.Equal(["SERVER_CERTIFICATE_NOT_VALID_YET", "2026-12-07T12:00:00Z", "2026-12-09T12:00:00Z"], Refused(future, keyPem).ErrorDescription);

        using var other = RSA.Create(2048);
        var (pem, _, _) = Make(key);
        Assert.Equal(["SERVER_CERTIFICATE_KEY_MISMATCH"], Refused(pem, other.ExportPkcs8PrivateKeyPem()).ErrorDescription);

        var (sha384, _, _) = Make(key, hash: HashAlgorithmName.SHA384);
        Assert.Equal(["SERVER_CERTIFICATE_SIGNATURE_NOT_SUPPORTED"], Refused(sha384, keyPem).ErrorDescription);
        var (sha512, _, _) = Make(key, hash: HashAlgorithmName.SHA512);
        Assert.NotNull(ServerCertificateValidation.Validate(sha512, keyPem, "", Now));
    }

    [Fact]
    public void A_chain_given_must_be_pem_certificates()
    {
        using var key = RSA.Create(2048);
        var (pem, keyPem, _) = Make(key);
        Assert.Equal(["SERVER_CERTIFICATE_CHAIN_INVALID"], Refused(pem, keyPem, "not a chain").ErrorDescription);
        Assert.Equal(["SERVER_CERTIFICATE_CHAIN_INVALID"], Refused(pem, keyPem, keyPem).ErrorDescription);
        Assert.Equal(["SERVER_CERTIFICATE_CHAIN_INVALID"], Refused(pem, keyPem, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").ErrorDescription);
        Assert.Equal(2, ServerCertificateValidation.Validate(pem, keyPem, pem + "\n" + pem, Now).Chain.Count);
    }
}
