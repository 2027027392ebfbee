using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Corral.Api.Client.Tls;
using Corral.Api.Https;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Xunit;

namespace Corral.UnitTests;

/// <summary>The host's own server certificate, as XenServer's gencert makes it: made once, then reused.</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class HostCertificateTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("corral-cert-").FullName;

    private string PemPath => Path.Combine(_dir, "xapi-ssl.pem");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private sealed class FixedTime(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }

    private static readonly DateTimeOffset Now = new(2026, 11, 3, 10, 20, 30, 400, TimeSpan.Zero);

    private HostCertificate Load(string name, string address) =>
        HostCertificateFile.LoadOrCreate(PemPath, HostCertificateSubjects.For(name, address), 3650, new FixedTime(Now), NullLogger.Instance);

    [Fact]
    public void At_first_start_a_self_signed_rsa_2048_certificate_names_the_host_for_ten_years()
    {
        var made = Load("lab-host1", "10.78.0.11");
        var certificate = made.Certificate;

        Assert.Equal("CN=lab-host1", certificate.Subject);
        Assert.Equal(certificate.Subject, certificate.Issuer);
        Assert.Equal(2048, certificate.GetRSAPublicKey()!.KeySize);
        Assert.Equal("1.2.840.113549.1.1.11", certificate.SignatureAlgorithm.Value); // sha256WithRSAEncryption
        Assert.Equal(new DateTime(2026, 11, 3, 10, 20, 30, DateTimeKind.Utc), certificate.NotBefore.ToUniversalTime());
        Assert.Equal(new DateTime(2036, 10, 31, 10, 20, 30, DateTimeKind.Utc), certificate.NotAfter.ToUniversalTime());
        var names = certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single();
        Assert.Equal(["lab-host1"], names.EnumerateDnsNames());
        Assert.Equal([IPAddress.Parse("10.78.0.11")], names.EnumerateIPAddresses());
        Assert.Contains(certificate.Extensions.OfType<X509EnhancedKeyUsageExtension>().Single().EnhancedKeyUsages.Cast<Oid>(), o => o.Value == "1.3.6.1.5.5.7.3.1");
        Assert.True(certificate.HasPrivateKey);
        Assert.Equal(CertificateFingerprint.Sha256(certificate), made.Fingerprint);
        Assert.Equal(certificate.ExportCertificatePem() + "\n", made.Pem);
    }

    [Fact]
    public void The_file_holds_key_then_certificate_and_only_its_owner_may_read_it()
    {
        Load("lab-host1", "10.78.0.11");
        var text = File.ReadAllText(PemPath);
        Assert.StartsWith("-----BEGIN PRIVATE KEY-----", text, StringComparison.Ordinal);
        Assert.Contains("-----BEGIN CERTIFICATE-----", text, StringComparison.Ordinal);
        Assert.Equal(UnixFileMode.UserRead, File.GetUnixFileMode(PemPath));
        Assert.Equal([PemPath], Directory.GetFiles(_dir));
    }

    [Fact]
    public void Later_starts_reuse_the_same_certificate()
    {
        var first = Load("lab-host1", "10.78.0.11");
        var again = Load("lab-host1", "10.78.0.11");
        Assert.Equal(first.Fingerprint, again.Fingerprint);
        Assert.True(again.Certificate.HasPrivateKey);
    }

    [Theory]
    [InlineData("lab-host1", "10.78.0.12")]
    [InlineData("lab-host9", "10.78.0.11")]
    public void A_new_address_or_name_makes_a_new_certificate_naming_it(string name, string address)
    {
        var first = Load("lab-host1", "10.78.0.11");
        var after = Load(name, address);
        Assert.NotEqual(first.Fingerprint, after.Fingerprint);
        var names = after.Certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single();
        Assert.Equal([name], names.EnumerateDnsNames());
        Assert.Equal([IPAddress.Parse(address)], names.EnumerateIPAddresses());
        Assert.Equal(after.Fingerprint, Load(name, address).Fingerprint);
    }

    [Fact]
    public void A_certificate_an_administrator_installed_is_kept_even_when_it_names_something_else()
    {
        // Signed by a CA of the administrator's, for another name.
        using var caKey = RSA.Create(2048);
        var caRequest = new CertificateRequest("CN=Example CA", caKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        using var ca = caRequest.CreateSelfSigned(Now.AddDays(-1), Now.AddYears(5));
        using var hostKey = RSA.Create(2048);
        var request = new CertificateRequest("CN=xs1.example.com", hostKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        using var issued = request.Create(ca, Now.AddDays(-1), Now.AddYears(1), [1, 2, 3, 4]);
        File.WriteAllText(PemPath, hostKey.ExportPkcs8PrivateKeyPem() + "\n" + issued.ExportCertificatePem() + "\n");

        var kept = Load("lab-host1", "10.78.0.11");
        Assert.Equal(CertificateFingerprint.Sha256(issued), kept.Fingerprint);
        Assert.True(kept.Certificate.HasPrivateKey);
    }

    [Fact]
    public void An_unusable_file_is_set_aside_and_a_new_certificate_made()
    {
        File.WriteAllText(PemPath, "not a certificate");
        var made = Load("lab-host1", "10.78.0.11");
        Assert.Equal("not a certificate", File.ReadAllText(PemPath + ".unusable"));
        Assert.Equal(made.Fingerprint, Load("lab-host1", "10.78.0.11").Fingerprint);
    }

    [Theory]
    [InlineData("lab-host1", "10.78.0.11", "lab-host1", "lab-host1", "10.78.0.11")]
    [InlineData("lab-host1", "xs1.example.com", "lab-host1", "lab-host1,xs1.example.com", "")]
    [InlineData("localhost", "127.0.0.1", "127.0.0.1", "", "127.0.0.1")]
    [InlineData("h", "fd00::11", "h", "h", "fd00::11")]
    public void The_subjects_are_the_hosts_name_and_management_address(string name, string address, string commonName, string dns, string ips)
    {
        var subjects = HostCertificateSubjects.For(name, address);
        Assert.Equal(commonName, subjects.CommonName);
        Assert.Equal(dns, string.Join(',', subjects.DnsNames));
        Assert.Equal(ips, string.Join(',', subjects.IpAddresses));
    }

    [Fact]
    public void A_fingerprint_is_written_as_xapi_writes_it()
    {
        var certificate = Load("lab-host1", "10.78.0.11").Certificate;
        var sha256 = CertificateFingerprint.Sha256(certificate);
        Assert.Matches("^([0-9A-F]{2}:){31}[0-9A-F]{2}$", sha256);
        Assert.Equal(Convert.ToHexString(SHA256.HashData(certificate.RawData)), sha256.Replace(":", "", StringComparison.Ordinal));
        Assert.Equal(certificate.Thumbprint, CertificateFingerprint.Sha1(certificate).Replace(":", "", StringComparison.Ordinal));
        Assert.Equal("0A:FF:00", CertificateFingerprint.Format([0x0a, 0xff, 0x00]));
    }

    [Theory]
    [InlineData(80, 80, "*", 3650, "must differ")]
    [InlineData(70000, 443, "*", 3650, "HttpPort must be a port number")]
    [InlineData(80, -1, "*", 3650, "HttpsPort must be a port number")]
    [InlineData(80, 443, "every", 3650, "ListenAddress must be * or an IP address")]
    [InlineData(80, 443, "*", 0, "CertificateValidityDays")]
    public void Bad_settings_are_refused_at_start(int http, int https, string listen, int days, string problem)
    {
        var options = new HttpsOptions { HttpPort = http, HttpsPort = https, ListenAddress = listen, CertificateValidityDays = days };
        var refused = Assert.Throws<OptionsValidationException>(options.Validate);
        Assert.Contains(problem, refused.Message, StringComparison.Ordinal);
        Assert.True(new HttpsOptionsValidator().Validate(null, options).Failed);
    }

    [Fact]
    public void The_defaults_are_xenservers_ports_and_the_state_directory()
    {
        var options = new HttpsOptions();
        options.Validate();
        Assert.Equal((80, 443, "*"), (options.HttpPort, options.HttpsPort, options.ListenAddress));
        Assert.Equal("/var/lib/corral/xapi-ssl.pem", options.CertificatePathIn("/var/lib/corral"));
        Assert.Equal("/etc/corral/host.pem", new HttpsOptions { CertificatePath = "/etc/corral/host.pem" }.CertificatePathIn("/var/lib/corral"));
        new HttpsOptions { HttpPort = 0, HttpsPort = 0, ListenAddress = "127.0.0.1" }.Validate();
    }
}
