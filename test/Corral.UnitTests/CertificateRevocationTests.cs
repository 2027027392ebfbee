using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Corral.Api.Https;
using Corral.PoolDatabase.Etcd.Tls;
using Xunit;

namespace Corral.UnitTests;

/// <summary>A host's etcd certificate replaced in its files, and the pool's revocation list (issue 15, item 3).</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class CertificateRevocationTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("corral-revocation-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private EtcdTlsFiles NewPool(string name = "host1")
    {
        var files = new EtcdTlsFiles(Path.Combine(_dir, name));
        files.CreatePool(name, [name, "10.0.0.1"], TimeProvider.System);
        return files;
    }

    [Fact]
    public void A_revocation_list_names_the_serials_it_was_made_for_and_is_signed_by_the_pools_ca()
    {
        using var ca = PoolCertificateAuthority.Create(TimeProvider.System);
        var pem = ca.CreateRevocationList(["0A1B", "00ff12", "0a1b"], TimeProvider.System);
        Assert.StartsWith("-----BEGIN X509 CRL-----", pem, StringComparison.Ordinal);
        Assert.Equal(new HashSet<string> { "0A1B", "FF12" }, PoolCertificateAuthority.RevokedSerials(pem));
        Assert.Empty(PoolCertificateAuthority.RevokedSerials(ca.CreateRevocationList([], TimeProvider.System)));

        // The CA's signature over the list: .NET reads it back only with the issuer's name and the number it was given.
        var builder = CertificateRevocationListBuilder.LoadPem(pem, out var number);
        Assert.Equal(2, (int)number);
        Assert.NotNull(builder);
        Assert.Throws<PoolCertificateException>(() => PoolCertificateAuthority.RevokedSerials("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"));
    }

    [Fact]
    public void A_serial_whose_first_byte_has_its_high_bit_set_is_listed_as_the_positive_integer_it_is()
    {
        using var ca = PoolCertificateAuthority.Create(TimeProvider.System);
        var pem = ca.CreateRevocationList(["009AA79C067CB044E7F1A8C124EF5EDF", "7F01"], TimeProvider.System);

        // As etcd (Go's big.Int) and GnuTLS read the entries: signed integers, each the certificate's serial.
        var tbs = new System.Formats.Asn1.AsnReader(Convert.FromBase64String(pem[PemEncoding.Find(pem).Base64Data]),
            System.Formats.Asn1.AsnEncodingRules.DER).ReadSequence().ReadSequence();
        tbs.ReadInteger();
        tbs.ReadEncodedValue();
        tbs.ReadEncodedValue();
        tbs.ReadEncodedValue();
        tbs.ReadEncodedValue();
        var entries = tbs.ReadSequence();
        var listed = new List<System.Numerics.BigInteger>();
        while (entries.HasData)
        {
            listed.Add(entries.ReadSequence().ReadInteger());
        }

        Assert.Equal([System.Numerics.BigInteger.Parse("7F01", System.Globalization.NumberStyles.HexNumber),
            System.Numerics.BigInteger.Parse("009AA79C067CB044E7F1A8C124EF5EDF", System.Globalization.NumberStyles.HexNumber)], listed.Order());
        Assert.True(PoolCertificateAuthority.EncodesSerialsAsPositive(pem));
        Assert.Equal(new HashSet<string> { "9AA79C067CB044E7F1A8C124EF5EDF", "7F01" }, PoolCertificateAuthority.RevokedSerials(pem));
    }

    [Fact]
    public void A_list_that_gave_a_serial_as_a_negative_number_is_written_again()
    {
        var files = NewPool();
        // As the list was written before: the serial's bytes as they are, which DER reads as a negative number.
        using var authority = X509Certificate2.CreateFromPemFile(files.CaCertificateFile, files.CaKeyFile);
        var builder = new CertificateRevocationListBuilder();
        builder.AddEntry(Convert.FromHexString("9AA79C067CB044E7F1A8C124EF5EDF"), DateTimeOffset.UtcNow, X509RevocationReason.Superseded);
        var der = builder.Build(authority, 1, DateTimeOffset.UtcNow.AddDays(1), HashAlgorithmName.SHA256);
        File.WriteAllText(files.RevocationListFile, PemEncoding.WriteString("X509 CRL", der) + "\n");
        Assert.False(PoolCertificateAuthority.EncodesSerialsAsPositive(File.ReadAllText(files.RevocationListFile)));

        Assert.True(files.WriteRevocationList(["009AA79C067CB044E7F1A8C124EF5EDF"], TimeProvider.System));
        Assert.True(PoolCertificateAuthority.EncodesSerialsAsPositive(File.ReadAllText(files.RevocationListFile)));
        Assert.False(files.WriteRevocationList(["9AA79C067CB044E7F1A8C124EF5EDF"], TimeProvider.System));
    }

    [Fact]
    public void Issued_serial_numbers_are_sixteen_bytes_positive_without_a_leading_zero()
    {
        using var ca = PoolCertificateAuthority.Create(TimeProvider.System);
        for (var i = 0; i < 64; i++)
        {
            var (_, request) = PoolCertificateAuthority.CreateSigningRequest("host1");
            using var certificate = ca.Issue(request, "host1", ["host1"], TimeProvider.System);
            var serial = certificate.GetSerialNumber(); // little-endian
            Assert.Equal(16, serial.Length);
            Assert.InRange(serial[^1], 0x40, 0x7F);
        }
    }

    [Theory]
    [InlineData("00A1B2", "A1B2")]
    [InlineData("a1:b2", "A1B2")]
    [InlineData("00", "00")]
    [InlineData("0000FF", "FF")]
    public void Serial_numbers_compare_as_integers(string given, string expected)
    {
        Assert.Equal(expected, PoolCertificateAuthority.NormalizeSerial(given));
        Assert.Equal(expected, PoolCertificateRevocations.Normalize(given));
    }

    [Fact]
    public void A_refresh_makes_a_new_key_and_certificate_of_the_pools_ca_for_the_same_names()
    {
        var files = NewPool();
        var caBefore = File.ReadAllText(files.CaCertificateFile);
        var keyBefore = File.ReadAllText(files.KeyFile);
        var (old, refreshed) = files.Refresh("host1", ["host1", "10.0.0.1"], TimeProvider.System);

        Assert.NotEqual(old.SerialNumber, refreshed.SerialNumber);
        Assert.Equal(old.Subject, refreshed.Subject);
        Assert.Equal(Names(old), Names(refreshed));
        Assert.NotEqual(keyBefore, File.ReadAllText(files.KeyFile));
        Assert.Equal(caBefore, File.ReadAllText(files.CaCertificateFile));
        Assert.True(PoolCertificateAuthority.Verifies(files.LoadCaCertificate(), refreshed));

        // The separate files and the member's bundle hold the new pair, each its key's.
        using var separate = X509Certificate2.CreateFromPem(File.ReadAllText(files.CertificateFile), File.ReadAllText(files.KeyFile));
        var bundle = File.ReadAllText(files.MemberBundleFile);
        using var bundled = X509Certificate2.CreateFromPem(bundle, bundle);
        Assert.Equal(refreshed.SerialNumber, separate.SerialNumber);
        Assert.Equal(refreshed.SerialNumber, bundled.SerialNumber);
        Assert.True(bundled.HasPrivateKey);
        Assert.Equal(refreshed.SerialNumber, files.LoadCertificate().SerialNumber);
        foreach (var file in new[] { files.MemberBundleFile, files.KeyFile, files.CertificateFile, files.RevocationListFile })
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
        }
    }

    [Fact]
    public void The_list_is_written_only_when_the_pools_revocations_change()
    {
        var files = NewPool();
        Assert.Empty(files.RevokedSerials());
        Assert.False(files.WriteRevocationList([], TimeProvider.System));
        Assert.True(files.WriteRevocationList(["00ab", "CD"], TimeProvider.System));
        Assert.False(files.WriteRevocationList(["CD", "AB"], TimeProvider.System));
        Assert.Equal(new HashSet<string> { "AB", "CD" }, files.RevokedSerials());
        Assert.True(files.WriteRevocationList(["AB", "CD", "EF"], TimeProvider.System));
        Assert.Equal(3, files.RevokedSerials().Count);
    }

    [Fact]
    public void The_member_serves_the_bundle_and_reads_the_pools_list_on_both_ports()
    {
        var files = NewPool();
        var arguments = files.MemberArguments();
        string Flag(string name) => arguments[arguments.ToList().IndexOf(name) + 1];
        Assert.Equal(files.MemberBundleFile, Flag("--cert-file"));
        Assert.Equal(files.MemberBundleFile, Flag("--key-file"));
        Assert.Equal(files.MemberBundleFile, Flag("--peer-cert-file"));
        Assert.Equal(files.MemberBundleFile, Flag("--peer-key-file"));
        Assert.Equal(files.RevocationListFile, Flag("--client-crl-file"));
        Assert.Equal(files.RevocationListFile, Flag("--peer-crl-file"));
        Assert.Contains("--client-cert-auth", arguments);
        Assert.Contains("--peer-client-cert-auth", arguments);

        // An older agent's directory (no bundle, no list) gets both before its member starts.
        File.Delete(files.MemberBundleFile);
        File.Delete(files.RevocationListFile);
        files.EnsureMemberFiles(TimeProvider.System);
        Assert.True(File.Exists(files.MemberBundleFile));
        Assert.Empty(files.RevokedSerials());
    }

    [Fact]
    public void A_joining_hosts_new_files_drop_the_old_pools_list()
    {
        var files = NewPool();
        files.WriteRevocationList(["AB"], TimeProvider.System);
        var other = NewPool("other");
        using var ca = other.LoadAuthority();
        var (key, request) = PoolCertificateAuthority.CreateSigningRequest("host1");
        using var certificate = ca.Issue(request, "host1", ["host1"], TimeProvider.System);
        files.Write(new PoolTlsMaterial(ca.CertificatePem, ca.KeyPem, certificate.ExportCertificatePem(), key));
        // The new pool's list comes from its database; the old pool's (signed by another CA) is gone.
        Assert.Empty(files.RevokedSerials());
        Assert.Equal(certificate.SerialNumber, files.LoadCertificate().SerialNumber);
    }

    [Fact]
    public void A_certificates_serial_is_read_from_its_pem_and_nothing_else_is_revoked()
    {
        var files = NewPool();
        var pem = File.ReadAllText(files.CertificateFile);
        using var certificate = X509Certificate2.CreateFromPem(pem);
        Assert.Equal(PoolCertificateRevocations.Normalize(certificate.SerialNumber), PoolCertificateRevocations.SerialOf(pem));
        Assert.Null(PoolCertificateRevocations.SerialOf("not a certificate"));
        Assert.Null(PoolCertificateRevocations.SerialOf(null));
        var tx = new Corral.PoolDatabase.PoolTransaction();
        Assert.False(PoolCertificateRevocations.Revoke(tx, "garbage", DateTimeOffset.UtcNow));
        Assert.True(PoolCertificateRevocations.Revoke(tx, pem, DateTimeOffset.UtcNow));
    }

    private static string Names(X509Certificate2 certificate) =>
        string.Join(",", certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single().EnumerateDnsNames()
            .Concat(certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single().EnumerateIPAddresses().Select(a => a.ToString())));
}
