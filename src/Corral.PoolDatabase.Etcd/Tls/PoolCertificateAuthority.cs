using System.Formats.Asn1;
using System.Net;
using System.Numerics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Corral.PoolDatabase.Etcd.Tls;

/// <summary>A certificate signing request the pool's CA will not sign (unreadable, its signature wrong, a weak key, a bad name).</summary>
public sealed class PoolCertificateException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// The pool's certificate authority: an ECDSA P-256 key and its self-signed CA certificate, made when a host starts a
/// pool of its own. It signs each host's certificate for its etcd member, used both as the member's server certificate
/// (client and peer ports) and as the client certificate the host presents to the other members. Only etcd trusts it;
/// the XenAPI's HTTPS keeps its own host certificates, pinned as XenServer pins them.
/// </summary>
public sealed class PoolCertificateAuthority : IDisposable
{
    /// <summary>The CA is not rotated: it outlives any host's service life; hosts' certificates are replaced by <c>host.refresh_server_certificate</c>.</summary>
    public static readonly TimeSpan CaValidity = TimeSpan.FromDays(20 * 365);

    public static readonly TimeSpan HostValidity = TimeSpan.FromDays(10 * 365);

    /// <summary>Hosts' clocks differ: a certificate made on one is valid on another whose clock is behind by this much.</summary>
    public static readonly TimeSpan ClockSkew = TimeSpan.FromDays(1);

    private static readonly Oid ServerAuthentication = new("1.3.6.1.5.5.7.3.1", "Server Authentication");
    private static readonly Oid ClientAuthentication = new("1.3.6.1.5.5.7.3.2", "Client Authentication");

    private readonly X509Certificate2 _certificate;

    private PoolCertificateAuthority(X509Certificate2 certificate)
    {
        if (!certificate.HasPrivateKey)
        {
            throw new PoolCertificateException("the pool CA's certificate has no private key");
        }

        _certificate = certificate;
    }

    /// <summary>The CA's certificate (with its key: do not hand it out; use <see cref="CertificatePem"/>).</summary>
    public X509Certificate2 Certificate => _certificate;

    public string CertificatePem => _certificate.ExportCertificatePem();

    public string KeyPem
    {
        get
        {
            using var key = _certificate.GetECDsaPrivateKey() ?? throw new PoolCertificateException("the pool CA's key is not ECDSA");
            return key.ExportPkcs8PrivateKeyPem();
        }
    }

    /// <summary>A new pool's CA.</summary>
    public static PoolCertificateAuthority Create(TimeProvider time)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var name = new X500DistinguishedNameBuilder();
        name.AddOrganizationName("Corral");
        // A name of its own per pool: two pools' CAs are never taken for one another in a log or a chain.
        name.AddCommonName($"Corral pool CA {Guid.NewGuid():N}");
        var request = new CertificateRequest(name.Build(), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var now = time.GetUtcNow();
        return new PoolCertificateAuthority(request.CreateSelfSigned(now - ClockSkew, now + CaValidity));
    }

    public static PoolCertificateAuthority FromPem(string certificatePem, string keyPem)
    {
        try
        {
            return new PoolCertificateAuthority(X509Certificate2.CreateFromPem(certificatePem, keyPem));
        }
        catch (CryptographicException ex)
        {
            throw new PoolCertificateException($"the pool CA cannot be read: {ex.Message}", ex);
        }
    }

    /// <summary>A new key and a signing request for it (PEM both), as a host asks for its certificate: its key stays with it.</summary>
    public static (string KeyPem, string RequestPem) CreateSigningRequest(string hostName)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var name = new X500DistinguishedNameBuilder();
        name.AddCommonName(hostName.Length > 0 ? hostName : "corral-host");
        var request = new CertificateRequest(name.Build(), key, HashAlgorithmName.SHA256);
        return (key.ExportPkcs8PrivateKeyPem(), request.CreateSigningRequestPem());
    }

    /// <summary>
    /// Signs a host's request: the key is the request's (its signature proves the requester holds it); everything else
    /// is decided here, not taken from the request: the subject (<paramref name="hostName"/>), the names
    /// (<paramref name="names"/>, plus loopback, through which each host's agent reaches its own member), the usages
    /// (TLS server and client, no CA), and the validity.
    /// </summary>
    public X509Certificate2 Issue(string requestPem, string hostName, IEnumerable<string> names, TimeProvider time)
    {
        var asked = LoadRequest(requestPem);
        var subject = new X500DistinguishedNameBuilder();
        subject.AddCommonName(hostName);
        var request = new CertificateRequest(subject.Build(), asked.PublicKey, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        var rsa = asked.PublicKey.Oid.Value == "1.2.840.113549.1.1.1";
        request.CertificateExtensions.Add(new X509KeyUsageExtension(
            X509KeyUsageFlags.DigitalSignature | (rsa ? X509KeyUsageFlags.KeyEncipherment : X509KeyUsageFlags.None), true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([ServerAuthentication, ClientAuthentication], false));
        request.CertificateExtensions.Add(AlternativeNames(names));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(_certificate, true, false));
        // Within the CA's own validity (the master's clock may be behind the clock of the host that made the CA).
        var now = time.GetUtcNow();
        var caNotBefore = new DateTimeOffset(_certificate.NotBefore.ToUniversalTime());
        var caNotAfter = new DateTimeOffset(_certificate.NotAfter.ToUniversalTime());
        var notBefore = now - ClockSkew > caNotBefore ? now - ClockSkew : caNotBefore;
        var notAfter = now + HostValidity < caNotAfter ? now + HostValidity : caNotAfter;
        if (notAfter <= notBefore)
        {
            throw new PoolCertificateException($"the pool's CA is not valid now (from {caNotBefore:u} to {caNotAfter:u})");
        }

        // Positive, as RFC 5280 asks, and its first byte not zero: sixteen bytes as an integer, whatever the draw.
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] = (byte)((serial[0] & 0x7F) | 0x40);
        return request.Create(_certificate, notBefore, notAfter, serial);
    }

    /// <summary>
    /// The pool's revocation list (PEM) naming <paramref name="revoked"/> (serial numbers, hex), signed by this CA and
    /// valid as long as the CA. Its number counts the entries: the list only grows while the CA lives.
    /// </summary>
    public string CreateRevocationList(IReadOnlyCollection<string> revoked, TimeProvider time)
    {
        var builder = new CertificateRevocationListBuilder();
        var now = time.GetUtcNow();
        var serials = revoked.Select(NormalizeSerial).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        foreach (var serial in serials)
        {
            builder.AddEntry(PositiveInteger(Convert.FromHexString(serial)), now, X509RevocationReason.Superseded);
        }

        var der = builder.Build(_certificate, new BigInteger(serials.Count), new DateTimeOffset(_certificate.NotAfter.ToUniversalTime()),
            HashAlgorithmName.SHA256, thisUpdate: now);
        return PemEncoding.WriteString("X509 CRL", der) + "\n";
    }

    /// <summary>The serial numbers (hex, <see cref="NormalizeSerial"/>) a revocation list in PEM names.</summary>
    public static IReadOnlySet<string> RevokedSerials(string crlPem) =>
        ReadEntries(crlPem).Select(entry => entry.Serial).ToHashSet(StringComparer.Ordinal);

    /// <summary>
    /// Whether every serial number in the list is encoded as the positive integer it is. Lists written before
    /// <see cref="PositiveInteger"/> gave a serial whose first byte has its high bit set as a negative number, which
    /// etcd and GnuTLS compare as another certificate's: such a list revokes nothing there and must be written again.
    /// </summary>
    public static bool EncodesSerialsAsPositive(string crlPem) => ReadEntries(crlPem).All(entry => !entry.Negative);

    private static List<(string Serial, bool Negative)> ReadEntries(string crlPem)
    {
        var entries = new List<(string, bool)>();
        try
        {
            var fields = PemEncoding.Find(crlPem);
            var der = Convert.FromBase64String(crlPem[fields.Base64Data]);
            var tbs = new AsnReader(der, AsnEncodingRules.DER).ReadSequence().ReadSequence();
            if (tbs.PeekTag().HasSameClassAndValue(Asn1Tag.Integer))
            {
                tbs.ReadInteger(); // version
            }

            tbs.ReadEncodedValue(); // signature algorithm
            tbs.ReadEncodedValue(); // issuer
            tbs.ReadEncodedValue(); // this update
            if (tbs.HasData && (tbs.PeekTag().HasSameClassAndValue(Asn1Tag.UtcTime) || tbs.PeekTag().HasSameClassAndValue(Asn1Tag.GeneralizedTime)))
            {
                tbs.ReadEncodedValue(); // next update
            }

            if (tbs.HasData && tbs.PeekTag().HasSameClassAndValue(Asn1Tag.Sequence))
            {
                var list = tbs.ReadSequence();
                while (list.HasData)
                {
                    var content = list.ReadSequence().ReadIntegerBytes().Span;
                    entries.Add((NormalizeSerial(Convert.ToHexString(content)), (content[0] & 0x80) != 0));
                }
            }
        }
        catch (Exception ex) when (ex is AsnContentException or FormatException or ArgumentException)
        {
            throw new PoolCertificateException($"the revocation list cannot be read: {ex.Message}", ex);
        }

        return entries;
    }

    /// <summary>
    /// <paramref name="serial"/> (an unsigned big-endian integer) as the content of a DER INTEGER, which is signed: a zero
    /// byte before a first byte with its high bit set. The CRL builder writes the bytes it is given as they are.
    /// </summary>
    private static byte[] PositiveInteger(byte[] serial) => serial.Length > 0 && (serial[0] & 0x80) != 0 ? [0, .. serial] : serial;

    /// <summary>A serial number as compared here: upper-case hex without leading zero bytes (as an integer, which etcd compares).</summary>
    public static string NormalizeSerial(string hex)
    {
        var upper = hex.Trim().Replace(":", "", StringComparison.Ordinal).ToUpperInvariant();
        while (upper.Length > 2 && upper.StartsWith("00", StringComparison.Ordinal))
        {
            upper = upper[2..];
        }

        return upper;
    }

    /// <summary>The host names and addresses of URLs (a member's peer and client URLs), with <paramref name="hostName"/>.</summary>
    public static IReadOnlyList<string> NamesFor(string hostName, params string[] urls)
    {
        var names = new List<string>();
        if (hostName.Length > 0)
        {
            names.Add(hostName);
        }

        foreach (var url in urls)
        {
            if (Uri.TryCreate(url, UriKind.Absolute, out var uri) && uri.Host.Length > 0)
            {
                names.Add(uri.HostNameType == UriHostNameType.IPv6 ? uri.Host.Trim('[', ']') : uri.Host);
            }
        }

        return names.Distinct(StringComparer.OrdinalIgnoreCase).ToList();
    }

    /// <summary>True if <paramref name="certificate"/> chains to <paramref name="ca"/> (and to nothing else) and is valid now.</summary>
    public static bool Verifies(X509Certificate2 ca, X509Certificate2 certificate)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(certificate) && chain.ChainElements[^1].Certificate.RawData.AsSpan().SequenceEqual(ca.RawData);
    }

    private static CertificateRequest LoadRequest(string requestPem)
    {
        CertificateRequest asked;
        try
        {
            // The request's signature is checked here: a request made for a key its sender does not hold is refused.
            asked = CertificateRequest.LoadSigningRequestPem(requestPem, HashAlgorithmName.SHA256);
        }
        catch (Exception ex) when (ex is CryptographicException or ArgumentException)
        {
            throw new PoolCertificateException($"the certificate signing request is not valid: {ex.Message}", ex);
        }

        using var ec = asked.PublicKey.GetECDsaPublicKey();
        using var rsa = asked.PublicKey.GetRSAPublicKey();
        if (!(ec is { KeySize: >= 256 } || rsa is { KeySize: >= 2048 }))
        {
            throw new PoolCertificateException("the certificate signing request's key is too weak (ECDSA of 256 bits or RSA of 2048 bits at least)");
        }

        return asked;
    }

    private static X509Extension AlternativeNames(IEnumerable<string> names)
    {
        var builder = new SubjectAlternativeNameBuilder();
        var all = names.Append("localhost").Append("127.0.0.1").Append("::1").Distinct(StringComparer.OrdinalIgnoreCase);
        foreach (var name in all)
        {
            if (IPAddress.TryParse(name, out var address))
            {
                builder.AddIpAddress(address);
                continue;
            }

            if (Uri.CheckHostName(name) != UriHostNameType.Dns)
            {
                throw new PoolCertificateException($"'{name}' is not a host name a certificate can carry");
            }

            builder.AddDnsName(name);
        }

        return builder.Build();
    }

    public void Dispose() => _certificate.Dispose();
}
