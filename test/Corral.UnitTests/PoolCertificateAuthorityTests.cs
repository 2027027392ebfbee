using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Corral.Agent.Membership;
using Corral.PoolDatabase.Etcd;
using Corral.PoolDatabase.Etcd.Membership;
using Corral.PoolDatabase.Etcd.Tls;
using Xunit;

namespace Corral.UnitTests;

/// <summary>The pool's CA and the etcd certificates it signs for the pool's hosts.</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class PoolCertificateAuthorityTests : IDisposable
{
    private static readonly DateTimeOffset Now = new(2026, 11, 3, 10, 20, 30, TimeSpan.Zero);
    private static readonly TimeProvider Clock = new FixedTime(Now);
    private static readonly Oid ServerAuthentication = new("1.3.6.1.5.5.7.3.1");
    private static readonly Oid ClientAuthentication = new("1.3.6.1.5.5.7.3.2");

    private readonly string _dir = Directory.CreateTempSubdirectory("corral-pool-ca-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private sealed class FixedTime(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }

    private static X509Certificate2 IssueFor(PoolCertificateAuthority ca, string host, params string[] names)
    {
        var (_, request) = PoolCertificateAuthority.CreateSigningRequest(host);
        return ca.Issue(request, host, names, Clock);
    }

    [Fact]
    public void The_pools_ca_is_a_ca_that_signs_certificates_and_nothing_else()
    {
        using var ca = PoolCertificateAuthority.Create(Clock);
        var certificate = ca.Certificate;

        Assert.Equal(certificate.SubjectName.RawData, certificate.IssuerName.RawData);
        Assert.Matches("^O=Corral, CN=Corral pool CA [0-9a-f]{32}$", certificate.Subject);
        var constraints = certificate.Extensions.OfType<X509BasicConstraintsExtension>().Single();
        Assert.True(constraints.CertificateAuthority);
        Assert.True(constraints.HasPathLengthConstraint);
        Assert.Equal(0, constraints.PathLengthConstraint);
        Assert.Equal(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, certificate.Extensions.OfType<X509KeyUsageExtension>().Single().KeyUsages);
        Assert.Equal(256, certificate.GetECDsaPublicKey()!.KeySize);
        Assert.Equal((Now - PoolCertificateAuthority.ClockSkew).UtcDateTime, certificate.NotBefore.ToUniversalTime());
        Assert.Equal((Now + PoolCertificateAuthority.CaValidity).UtcDateTime, certificate.NotAfter.ToUniversalTime());
        // Two pools never share a CA name.
        using var other = PoolCertificateAuthority.Create(Clock);
        Assert.NotEqual(certificate.Subject, other.Certificate.Subject);
    }

    [Fact]
    public void A_host_certificate_chains_to_its_pools_ca_and_to_no_other()
    {
        using var ca = PoolCertificateAuthority.Create(Clock);
        using var other = PoolCertificateAuthority.Create(Clock);
        using var certificate = IssueFor(ca, "lab-host2", "10.78.0.12");

        Assert.True(PoolCertificateAuthority.Verifies(ca.Certificate, certificate));
        Assert.False(PoolCertificateAuthority.Verifies(other.Certificate, certificate));
        Assert.Equal(ca.Certificate.SubjectName.RawData, certificate.IssuerName.RawData);
        // A self-signed certificate with the CA's very name is no certificate of the CA.
        using var forgerKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var forged = new CertificateRequest(ca.Certificate.SubjectName, forgerKey, HashAlgorithmName.SHA256).CreateSelfSigned(Now.AddDays(-1), Now.AddYears(1));
        Assert.False(PoolCertificateAuthority.Verifies(ca.Certificate, forged));
    }

    [Fact]
    public void A_host_certificate_names_the_host_its_addresses_and_loopback()
    {
        using var ca = PoolCertificateAuthority.Create(Clock);
        using var certificate = IssueFor(ca, "lab-host2", "lab-host2", "10.78.0.12", "host2.example.org");

        Assert.Equal("CN=lab-host2", certificate.Subject);
        var names = certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single();
        Assert.Equal(["lab-host2", "host2.example.org", "localhost"], names.EnumerateDnsNames().ToList());
        Assert.Equal([IPAddress.Parse("10.78.0.12"), IPAddress.Loopback, IPAddress.IPv6Loopback], names.EnumerateIPAddresses().ToList());
        Assert.Throws<PoolCertificateException>(() => IssueFor(ca, "lab-host2", "not a host name"));
    }

    [Fact]
    public void A_host_certificate_is_for_tls_servers_and_clients_and_cannot_sign()
    {
        using var ca = PoolCertificateAuthority.Create(Clock);
        using var certificate = IssueFor(ca, "lab-host2", "10.78.0.12");

        Assert.False(certificate.Extensions.OfType<X509BasicConstraintsExtension>().Single().CertificateAuthority);
        var usage = certificate.Extensions.OfType<X509KeyUsageExtension>().Single();
        Assert.True(usage.Critical);
        Assert.Equal(X509KeyUsageFlags.DigitalSignature, usage.KeyUsages);
        var purposes = certificate.Extensions.OfType<X509EnhancedKeyUsageExtension>().Single().EnhancedKeyUsages.Cast<Oid>().Select(o => o.Value).ToList();
        Assert.Equal([ServerAuthentication.Value, ClientAuthentication.Value], purposes);
        var authority = certificate.Extensions.OfType<X509AuthorityKeyIdentifierExtension>().Single();
        Assert.Equal(ca.Certificate.Extensions.OfType<X509SubjectKeyIdentifierExtension>().Single().SubjectKeyIdentifierBytes.ToArray(),
            authority.KeyIdentifier!.Value.ToArray());
        Assert.True(certificate.GetSerialNumber()[^1] < 0x80); // positive (GetSerialNumber is little-endian)
    }

    [Fact]
    public void A_host_certificate_is_valid_ten_years_from_a_day_back_and_never_beyond_its_ca()
    {
        using var ca = PoolCertificateAuthority.Create(Clock);
        using var certificate = IssueFor(ca, "lab-host2", "10.78.0.12");
        Assert.Equal((Now - PoolCertificateAuthority.ClockSkew).UtcDateTime, certificate.NotBefore.ToUniversalTime());
        Assert.Equal((Now + PoolCertificateAuthority.HostValidity).UtcDateTime, certificate.NotAfter.ToUniversalTime());

        // Fifteen years on, a new host's certificate ends with the CA.
        var (_, request) = PoolCertificateAuthority.CreateSigningRequest("lab-host9");
        using var late = ca.Issue(request, "lab-host9", ["10.78.0.19"], new FixedTime(Now.AddYears(15)));
        Assert.Equal(ca.Certificate.NotAfter, late.NotAfter);

        // A master whose clock is two days behind that of the host that made the CA: the certificate starts with the CA.
        var (_, another) = PoolCertificateAuthority.CreateSigningRequest("lab-host8");
        using var behind = ca.Issue(another, "lab-host8", ["10.78.0.18"], new FixedTime(Now.AddDays(-2)));
        Assert.Equal(ca.Certificate.NotBefore, behind.NotBefore);
        Assert.True(PoolCertificateAuthority.Verifies(ca.Certificate, behind));
    }

    [Fact]
    public void The_key_is_the_requesters_and_the_rest_of_the_request_is_ignored()
    {
        using var ca = PoolCertificateAuthority.Create(Clock);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        // A request asking for a CA certificate for another name: the key is all that is taken from it.
        var request = new CertificateRequest("CN=pool-ca-wannabe", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        var alternative = new SubjectAlternativeNameBuilder();
        alternative.AddDnsName("www.bank.example");
        request.CertificateExtensions.Add(alternative.Build());

        using var certificate = ca.Issue(request.CreateSigningRequestPem(), "lab-host2", ["10.78.0.12"], Clock);

        Assert.Equal("CN=lab-host2", certificate.Subject);
        Assert.False(certificate.Extensions.OfType<X509BasicConstraintsExtension>().Single().CertificateAuthority);
        Assert.DoesNotContain("www.bank.example", certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single().EnumerateDnsNames());
        using var withKey = certificate.CopyWithPrivateKey(key);
        Assert.True(withKey.HasPrivateKey);
        Assert.Equal(key.ExportSubjectPublicKeyInfo(), certificate.PublicKey.ExportSubjectPublicKeyInfo());
    }

    [Fact]
    public void A_request_not_signed_by_its_key_a_weak_key_or_no_request_at_all_is_refused()
    {
        using var ca = PoolCertificateAuthority.Create(Clock);

        // A stranger's request for someone else's public key: signed by another key, so its signature does not verify.
        using var victim = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var stranger = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var forged = new CertificateRequest("CN=lab-host2", stranger, HashAlgorithmName.SHA256);
        var generator = X509SignatureGenerator.CreateForECDsa(stranger);
        var forgedPem = new CertificateRequest(new X500DistinguishedName("CN=lab-host2"), new PublicKey(victim), HashAlgorithmName.SHA256)
            .CreateSigningRequestPem(generator);
        Assert.Contains("signature", Assert.Throws<PoolCertificateException>(() => ca.Issue(forgedPem, "lab-host2", [], Clock)).Message,
            StringComparison.OrdinalIgnoreCase);
        Assert.NotNull(ca.Issue(forged.CreateSigningRequestPem(), "lab-host2", [], Clock));

        using var weak = RSA.Create(1024);
        var weakPem = new CertificateRequest("CN=lab-host2", weak, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1).CreateSigningRequestPem();
        Assert.Contains("too weak", Assert.Throws<PoolCertificateException>(() => ca.Issue(weakPem, "lab-host2", [], Clock)).Message, StringComparison.Ordinal);

        Assert.Throws<PoolCertificateException>(() => ca.Issue("", "lab-host2", [], Clock));
        Assert.Throws<PoolCertificateException>(() => ca.Issue(ca.CertificatePem, "lab-host2", [], Clock));
    }

    [Fact]
    public void A_new_pools_files_are_the_owners_alone_and_fit_together()
    {
        var files = new EtcdTlsFiles(Path.Combine(_dir, EtcdTlsFiles.DirectoryName));
        Assert.False(files.Exists);
        files.CreatePool("lab-host1", PoolCertificateAuthority.NamesFor("lab-host1", "https://10.78.0.11:2380", "https://10.78.0.11:2379"), TimeProvider.System);

        Assert.True(files.Exists);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(files.Directory));
        foreach (var file in new[] { files.CaCertificateFile, files.CaKeyFile, files.CertificateFile, files.KeyFile })
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
        }

        using var ca = files.LoadAuthority();
        using var certificate = files.LoadCertificate();
        Assert.True(certificate.HasPrivateKey);
        Assert.True(PoolCertificateAuthority.Verifies(files.LoadCaCertificate(), certificate));
        Assert.Equal([IPAddress.Parse("10.78.0.11"), IPAddress.Loopback, IPAddress.IPv6Loopback],
            certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single().EnumerateIPAddresses().ToList());

        // A new pool (an ejected host's) has a CA of its own: the old pool's certificates are not its.
        var again = new EtcdTlsFiles(Path.Combine(_dir, "again"));
        again.CreatePool("lab-host1", ["10.78.0.11"], TimeProvider.System);
        Assert.False(PoolCertificateAuthority.Verifies(again.LoadCaCertificate(), certificate));
        files.Delete();
        Assert.False(Directory.Exists(files.Directory));
    }

    [Fact]
    public void A_membership_transition_which_carries_the_pools_ca_key_is_the_owners_alone()
    {
        var path = Path.Combine(_dir, "etcd.transition.json");
        var material = new PoolTlsMaterial("ca-pem", "ca-key-pem", "cert-pem", "key-pem");
        new MembershipTransition(MembershipChange.Join, 0, EtcdRole.Voter, 5, "a=https://10.0.0.1:2380", PoolSecret: "secret", Tls: material).Save(path);

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.Equal(material, MembershipTransition.Load(path)!.Tls);
    }

    [Fact]
    public void A_member_the_agent_runs_serves_tls_only()
    {
        Assert.Empty(new EtcdOptions { Member = new EtcdMemberOptions { Enabled = true } }.Problems());
        Assert.Contains(new EtcdMemberOptions { Enabled = true, PeerUrl = "http://10.0.0.1:2380" }.Problems(),
            p => p.StartsWith("Corral:Etcd:Member:PeerUrl", StringComparison.Ordinal));
        Assert.Contains(new EtcdMemberOptions { Enabled = true, ClientUrl = "http://10.0.0.1:2379" }.Problems(),
            p => p.StartsWith("Corral:Etcd:Member:ClientUrl", StringComparison.Ordinal));
        Assert.Contains(new EtcdOptions { Endpoints = "http://127.0.0.1:2379", Member = new EtcdMemberOptions { Enabled = true } }.Problems(),
            p => p.StartsWith("Corral:Etcd:Endpoints", StringComparison.Ordinal));
        // An etcd the agent does not run (a test's, an operator's) may be plain.
        Assert.Empty(new EtcdOptions { Endpoints = "http://127.0.0.1:2379" }.Problems());
        Assert.Equal("https://10.0.0.1:2379,https://127.0.0.1:2379", new EtcdMemberOptions { ClientUrl = "https://10.0.0.1:2379" }.EffectiveListenClientUrls);
    }
}
