using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Corral.Cli.Tests;

/// <summary>Self-signed server certificates, as a Corral or XenServer host makes its own.</summary>
internal static class TestCertificates
{
    public static X509Certificate2 SelfSigned(string name)
    {
        using var rsa = RSA.Create(2048);
        var request = new CertificateRequest($"CN={name}", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var alternative = new SubjectAlternativeNameBuilder();
        alternative.AddDnsName(name);
        request.CertificateExtensions.Add(alternative.Build());
        var now = DateTimeOffset.UtcNow;
        return request.CreateSelfSigned(now.AddMinutes(-1), now.AddDays(30));
    }
}
