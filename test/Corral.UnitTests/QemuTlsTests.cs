using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using Corral.Api.Migration;
using Corral.Hypervisor;
using Corral.Hypervisor.Qemu;
using Corral.PoolDatabase.Etcd.Tls;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace Corral.UnitTests;

/// <summary>
/// The TLS identities QEMU's migration and NBD streams accept (a certificate's subject as GnuTLS spells it) and the
/// destination's decision between TLS and plain TCP. Real QEMU checks these in Corral.Hypervisor.Qemu.Tests.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class QemuTlsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("corral-qemu-tls-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static X500DistinguishedName Name(Action<X500DistinguishedNameBuilder> build)
    {
        var builder = new X500DistinguishedNameBuilder();
        build(builder);
        return builder.Build();
    }

    [Fact]
    public void A_pool_hosts_certificate_is_named_by_its_member_name()
    {
        using var ca = PoolCertificateAuthority.Create(TimeProvider.System);
        var (_, request) = PoolCertificateAuthority.CreateSigningRequest("lab-host1");
        using var certificate = ca.Issue(request, "lab-host1", ["lab-host1", "10.0.0.11"], TimeProvider.System);

        Assert.Equal("CN=lab-host1", QemuTlsIdentity.Of(certificate));
        // The CA's name has two parts, written in the reverse of the order the certificate holds them (which puts
        // its O last: X500DistinguishedNameBuilder encodes the last added first).
        Assert.Equal("2.5.4.3", ca.Certificate.SubjectName.EnumerateRelativeDistinguishedNames(reversed: false).First().GetSingleElementType().Value);
        Assert.StartsWith("O=Corral,CN=Corral pool CA ", QemuTlsIdentity.Of(ca.Certificate), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("a,b", "CN=a\\,b")]
    [InlineData("x+y", "CN=x\\+y")]
    [InlineData("#1", "CN=\\#1")]
    [InlineData(" lead", "CN=\\ lead")]
    [InlineData("trail ", "CN=trail\\ ")]
    [InlineData("q\"<>;\\", "CN=q\\\"\\<\\>\\;\\\\")]
    [InlineData("a=b #c", "CN=a=b #c")]
    [InlineData("hôte", "CN=hôte")]
    public void Special_characters_are_escaped_as_rfc_4514_asks(string commonName, string expected) =>
        Assert.Equal(expected, QemuTlsIdentity.Format(Name(b => b.AddCommonName(commonName))));

    /// <summary>A name encoded with its relative names in this order (the least specific first, as certificates hold them).</summary>
    private static X500DistinguishedName Der(params (string Oid, string Value)[][] rdns)
    {
        var writer = new AsnWriter(AsnEncodingRules.DER);
        using (writer.PushSequence())
        {
            foreach (var rdn in rdns)
            {
                using (writer.PushSetOf())
                {
                    foreach (var (oid, value) in rdn)
                    {
                        using (writer.PushSequence())
                        {
                            writer.WriteObjectIdentifier(oid);
                            writer.WriteCharacterString(UniversalTagNumber.UTF8String, value);
                        }
                    }
                }
            }
        }

        return new X500DistinguishedName(writer.Encode());
    }

    [Fact]
    public void Names_list_their_parts_from_the_most_specific_with_short_attribute_names()
    {
        var name = Der([("0.9.2342.19200300.100.1.25", "org")], [("2.5.4.6", "FR")], [("2.5.4.10", "Corral"), ("2.5.4.11", "hosts")], [("2.5.4.3", "h1")]);

        // A multi-valued name keeps its attributes in DER's order (the shorter encoding first here), as certtool shows them.
        Assert.Equal("CN=h1,OU=hosts+O=Corral,C=FR,DC=org", QemuTlsIdentity.Format(name));
    }

    [Fact]
    public void An_attribute_without_a_short_name_is_written_as_its_oid_and_encoded_value()
    {
        var name = Name(b => b.Add("1.2.3.4", "v"));

        Assert.Equal("1.2.3.4=#0c0176", QemuTlsIdentity.Format(name));
    }

    private QemuOptions WithMaterial()
    {
        var files = new EtcdTlsFiles(Path.Combine(_dir, "etcd-tls"));
        files.CreatePool("host-b", ["host-b"], TimeProvider.System);
        return new QemuOptions
        {
            TlsCaCertificateFile = files.CaCertificateFile, TlsCertificateFile = files.CertificateFile, TlsKeyFile = files.KeyFile,
            TlsRevocationListFile = files.RevocationListFile,
        };
    }

    private static VmLaunchSpec Incoming(string? peer) =>
        new(Guid.NewGuid().ToString(), "vm", 256L << 20, 1, true, [], [], new Dictionary<string, string>(), "tcp:127.0.0.1:4444",
            IncomingPeerIdentity: peer);

    [Fact]
    public void With_the_pools_material_the_destination_accepts_the_named_source_only_and_sets_it_before_qemu_listens()
    {
        var options = WithMaterial();
        var spec = QemuTlsCredentials.ForIncoming(Incoming("CN=a\\,b"), options, NullLogger.Instance);
        var paths = new VmRuntimePaths(Path.Combine(_dir, "vm"));
        Directory.CreateDirectory(paths.Directory);

        var args = QemuTlsCredentials.IncomingArguments(spec, paths, options);

        Assert.Equal(
        [
            "-object", $"tls-creds-x509,id=corral-tls-server,endpoint=server,dir={paths.Tls},verify-peer=on",
            // QEMU's option syntax doubles commas; QEMU reads the identity back with the DN's own escape (CN=a\,b).
            "-object", "authz-simple,id=corral-tls-peer,identity=CN=a\\,,b",
            "-global", "migration.tls-creds=corral-tls-server",
            "-global", "migration.tls-authz=corral-tls-peer",
        ], args);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(paths.Tls));
        Assert.Equal(["ca-cert.pem", "ca-crl.pem", "server-cert.pem", "server-key.pem"],
            Directory.GetFiles(paths.Tls).Select(f => Path.GetFileName(f)).Order().ToArray());
        Assert.Equal(File.ReadAllText(options.TlsRevocationListFile), File.ReadAllText(Path.Combine(paths.Tls, "ca-crl.pem")));
        Assert.All(Directory.GetFiles(paths.Tls), f => Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(f)));
        Assert.Equal(File.ReadAllText(options.TlsKeyFile), File.ReadAllText(Path.Combine(paths.Tls, "server-key.pem")));

        var server = new JsonObject();
        QemuTlsCredentials.AddToNbdServer(server, spec);
        Assert.Equal("corral-tls-server", server["tls-creds"]!.GetValue<string>());
        Assert.Equal("corral-tls-peer", server["tls-authz"]!.GetValue<string>());
    }

    [Fact]
    public void A_host_without_a_revocation_list_gives_qemu_none_and_a_stale_copy_goes()
    {
        var options = WithMaterial();
        var spec = QemuTlsCredentials.ForIncoming(Incoming("CN=h1"), options, NullLogger.Instance);
        var paths = new VmRuntimePaths(Path.Combine(_dir, "vm"));
        Directory.CreateDirectory(paths.Directory);
        QemuTlsCredentials.IncomingArguments(spec, paths, options);
        Assert.True(File.Exists(Path.Combine(paths.Tls, "ca-crl.pem")));

        File.Delete(options.TlsRevocationListFile);
        QemuTlsCredentials.IncomingArguments(spec, paths, options);

        Assert.False(File.Exists(Path.Combine(paths.Tls, "ca-crl.pem")));
        Assert.True(File.Exists(Path.Combine(paths.Tls, "server-cert.pem")));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    public void With_the_pools_material_a_migration_naming_no_source_is_refused(string? peer)
    {
        var options = WithMaterial();

        var refused = Assert.Throws<VmStartException>(() => QemuTlsCredentials.ForIncoming(Incoming(peer), options, NullLogger.Instance));
        Assert.Contains("TLS identity", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Without_material_the_streams_are_plain_tcp()
    {
        var options = new QemuOptions { TlsCaCertificateFile = Path.Combine(_dir, "none.pem"), TlsCertificateFile = Path.Combine(_dir, "none.pem"), TlsKeyFile = Path.Combine(_dir, "none.key") };
        var paths = new VmRuntimePaths(Path.Combine(_dir, "vm"));

        var spec = QemuTlsCredentials.ForIncoming(Incoming("CN=h1"), options, NullLogger.Instance);

        Assert.Null(spec.IncomingPeerIdentity);
        Assert.Empty(QemuTlsCredentials.IncomingArguments(spec, paths, options));
        Assert.False(Directory.Exists(paths.Tls));
        var server = new JsonObject();
        QemuTlsCredentials.AddToNbdServer(server, spec);
        Assert.Empty(server);
        Assert.Null(QemuTlsCredentials.LocalIdentity(options));
    }

    [Fact]
    public void A_hosts_identity_is_its_certificates_subject()
    {
        var options = WithMaterial();

        Assert.Equal("CN=host-b", QemuTlsCredentials.LocalIdentity(options));
    }

    [Fact]
    public void A_mirror_reaches_an_export_over_tls_through_nbds_json_form()
    {
        Assert.Equal("nbd:10.0.0.2:10809:exportname=drive0", QemuTlsCredentials.NbdTarget("10.0.0.2", 10809, "drive0", null));

        var target = QemuTlsCredentials.NbdTarget("10.0.0.2", 10809, "drive0", "corral-tls-client");

        Assert.StartsWith("json:", target, StringComparison.Ordinal);
        var json = JsonNode.Parse(target["json:".Length..])!["file"]!;
        Assert.Equal("nbd", json["driver"]!.GetValue<string>());
        Assert.Equal("10.0.0.2", json["server"]!["host"]!.GetValue<string>());
        Assert.Equal("10809", json["server"]!["port"]!.GetValue<string>());
        Assert.Equal("drive0", json["export"]!.GetValue<string>());
        Assert.Equal("corral-tls-client", json["tls-creds"]!.GetValue<string>());
    }

    [Fact]
    public void The_migration_record_carries_the_sources_identity()
    {
        var record = new MigrationRecord { Id = "m", VmRef = "OpaqueRef:v", SourceRef = "OpaqueRef:a", DestinationRef = "OpaqueRef:b", TaskRef = "OpaqueRef:t",
            SourceTlsIdentity = "CN=lab-host1" };

        var json = record.ToJson();

        Assert.Contains("\"source_tls_identity\":\"CN=lab-host1\"", json, StringComparison.Ordinal);
        Assert.Equal("CN=lab-host1", MigrationRecord.FromJson(json).SourceTlsIdentity);
        // A record written before the field existed reads as "no identity".
        Assert.Equal("", MigrationRecord.FromJson(json.Replace(",\"source_tls_identity\":\"CN=lab-host1\"", "", StringComparison.Ordinal)).SourceTlsIdentity);
    }

    [Fact]
    public void A_certificate_that_is_not_pem_is_an_error_not_an_identity()
    {
        var file = Path.Combine(_dir, "bad.pem");
        File.WriteAllText(file, "not a certificate");

        Assert.ThrowsAny<CryptographicException>(() => QemuTlsIdentity.OfFile(file));
    }
}
