using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Corral.Platform;

namespace Corral.PoolDatabase.Etcd.Tls;

/// <summary>What a host holds of its pool's TLS: the CA (certificate and key) and its own key and certificate, PEM.</summary>
public sealed record PoolTlsMaterial(string CaCertificatePem, string CaKeyPem, string CertificatePem, string KeyPem);

/// <summary>
/// This host's pool CA and etcd certificate, in a directory of the host's state directory (mode 0700, each file 0600):
/// <c>pool-ca.pem</c> and <c>pool-ca.key</c> (the pool's CA, which every host holds so that any master can sign a
/// joining host's certificate), <c>host.pem</c> and <c>host.key</c> (this host's member certificate and key, also its
/// client certificate for the other members). etcd reads the files itself; the agent's clients load them.
/// </summary>
public sealed class EtcdTlsFiles(string directory)
{
    /// <summary>The directory's name in the agent's state directory.</summary>
    public const string DirectoryName = "etcd-tls";

    public string Directory => directory;

    public string CaCertificateFile => Path.Combine(directory, "pool-ca.pem");

    public string CaKeyFile => Path.Combine(directory, "pool-ca.key");

    public string CertificateFile => Path.Combine(directory, "host.pem");

    public string KeyFile => Path.Combine(directory, "host.key");

    /// <summary>
    /// This host's certificate and key in one file, which the member serves: etcd reads its certificate files at each
    /// handshake, and one file replaced by a rename never pairs a new certificate with an old key.
    /// </summary>
    public string MemberBundleFile => Path.Combine(directory, "member.pem");

    /// <summary>The pool's certificate revocation list, signed by its CA, which etcd reads at each connection it accepts.</summary>
    public string RevocationListFile => Path.Combine(directory, "crl.pem");

    public bool Exists => new[] { CaCertificateFile, CaKeyFile, CertificateFile, KeyFile }.All(File.Exists);

    /// <summary>
    /// etcd's flags for a member serving with these files: this host's certificate on the client and peer ports, and
    /// only certificates of the pool's CA accepted on either (a client without one is refused in the TLS handshake).
    /// </summary>
    /// <remarks>
    /// Both certificate flags name the bundle, and both revocation flags the pool's list (<see cref="EnsureMemberFiles"/>
    /// makes them): etcd 3.4 loads its certificate at each handshake and reads the list at each connection it accepts, so
    /// <see cref="Refresh"/> and a new list take effect without restarting the member.
    /// </remarks>
    public IReadOnlyList<string> MemberArguments() =>
    [
        "--cert-file", MemberBundleFile, "--key-file", MemberBundleFile, "--trusted-ca-file", CaCertificateFile, "--client-cert-auth",
        "--client-crl-file", RevocationListFile,
        "--peer-cert-file", MemberBundleFile, "--peer-key-file", MemberBundleFile, "--peer-trusted-ca-file", CaCertificateFile,
        "--peer-client-cert-auth", "--peer-crl-file", RevocationListFile,
    ];

    /// <summary>
    /// Makes the files the member's flags name that an older agent did not write (the bundle, an empty revocation list):
    /// etcd refuses every connection while its revocation list cannot be read.
    /// </summary>
    public void EnsureMemberFiles(TimeProvider time)
    {
        if (!File.Exists(MemberBundleFile))
        {
            WriteFile(MemberBundleFile, ReadRequired(CertificateFile).TrimEnd() + "\n" + ReadRequired(KeyFile));
        }

        if (!File.Exists(RevocationListFile))
        {
            using var ca = LoadAuthority();
            WriteFile(RevocationListFile, ca.CreateRevocationList([], time));
        }
    }

    /// <summary>
    /// Replaces this host's key and certificate with new ones signed by the pool's CA (held here), for the same names;
    /// returns the old and the new certificate. The member serves the new one from its next handshake; connections
    /// already made keep going.
    /// </summary>
    public (X509Certificate2 Old, X509Certificate2 New) Refresh(string hostName, IReadOnlyList<string> names, TimeProvider time)
    {
        var old = X509Certificate2.CreateFromPem(ReadRequired(CertificateFile));
        using var ca = LoadAuthority();
        var (keyPem, requestPem) = PoolCertificateAuthority.CreateSigningRequest(hostName);
        var certificate = ca.Issue(requestPem, hostName, names, time);
        var certificatePem = certificate.ExportCertificatePem();
        // The bundle first (what the member serves, in one rename), then the separate files the other clients read.
        WriteFile(MemberBundleFile, certificatePem + "\n" + keyPem);
        WriteFile(KeyFile, keyPem);
        WriteFile(CertificateFile, certificatePem);
        return (old, certificate);
    }

    /// <summary>
    /// Writes the pool's revocation list for <paramref name="revoked"/> (serial numbers, hex) unless the list here
    /// already names exactly those, each as the positive integer it is; true if it wrote. Signed with the pool's CA, as etcd and QEMU read CRLs.
    /// </summary>
    public bool WriteRevocationList(IReadOnlyCollection<string> revoked, TimeProvider time)
    {
        if (File.Exists(RevocationListFile))
        {
            var written = File.ReadAllText(RevocationListFile);
            if (PoolCertificateAuthority.RevokedSerials(written).SetEquals(revoked.Select(PoolCertificateAuthority.NormalizeSerial))
                && PoolCertificateAuthority.EncodesSerialsAsPositive(written))
            {
                return false;
            }
        }

        using var ca = LoadAuthority();
        WriteFile(RevocationListFile, ca.CreateRevocationList(revoked, time));
        return true;
    }

    /// <summary>The serial numbers (hex) the revocation list here names; none when there is no list.</summary>
    public IReadOnlySet<string> RevokedSerials() =>
        File.Exists(RevocationListFile) ? PoolCertificateAuthority.RevokedSerials(File.ReadAllText(RevocationListFile)) : new HashSet<string>();

    /// <summary>
    /// A new pool's: a new CA, and this host's certificate signed by it for <paramref name="names"/>. The key is made
    /// here and signed through a request, as a joining host's is.
    /// </summary>
    public void CreatePool(string hostName, IReadOnlyList<string> names, TimeProvider time)
    {
        using var ca = PoolCertificateAuthority.Create(time);
        var (keyPem, requestPem) = PoolCertificateAuthority.CreateSigningRequest(hostName);
        using var certificate = ca.Issue(requestPem, hostName, names, time);
        Write(new PoolTlsMaterial(ca.CertificatePem, ca.KeyPem, certificate.ExportCertificatePem(), keyPem));
    }

    /// <summary>Replaces the files (a join brings the pool's CA and this host's certificate from its master).</summary>
    public void Write(PoolTlsMaterial material)
    {
        System.IO.Directory.CreateDirectory(directory);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        WriteFile(CaCertificateFile, material.CaCertificatePem);
        WriteFile(CaKeyFile, material.CaKeyPem);
        WriteFile(KeyFile, material.KeyPem);
        WriteFile(CertificateFile, material.CertificatePem);
        WriteFile(MemberBundleFile, material.CertificatePem.TrimEnd() + "\n" + material.KeyPem);
        // A pool's list comes from its database once the agent runs; until then none of its certificates is refused.
        File.Delete(RevocationListFile);
        EnsureMemberFiles(TimeProvider.System);
    }

    /// <summary>Forgets the pool's CA and this host's certificate (a host ejected from its pool starts a pool of its own).</summary>
    public void Delete()
    {
        if (System.IO.Directory.Exists(directory))
        {
            System.IO.Directory.Delete(directory, recursive: true);
        }
    }

    public PoolCertificateAuthority LoadAuthority() =>
        PoolCertificateAuthority.FromPem(ReadRequired(CaCertificateFile), ReadRequired(CaKeyFile));

    public X509Certificate2 LoadCaCertificate() => X509Certificate2.CreateFromPem(ReadRequired(CaCertificateFile));

    /// <summary>This host's certificate with its key: the client certificate it presents to the pool's etcd members.</summary>
    public X509Certificate2 LoadCertificate() => File.Exists(MemberBundleFile)
        ? X509Certificate2.CreateFromPem(File.ReadAllText(MemberBundleFile), File.ReadAllText(MemberBundleFile))
        : X509Certificate2.CreateFromPem(ReadRequired(CertificateFile), ReadRequired(KeyFile));

    /// <summary>
    /// TLS for a client of the pool's etcd: this host's certificate presented, as the files hold it at each handshake
    /// (a refreshed certificate is used from the next connection on), the member's checked against the pool's CA alone
    /// (not the system's CAs), for the address dialled, and against the pool's revocation list.
    /// </summary>
    public SslClientAuthenticationOptions ClientOptions()
    {
        var ca = LoadCaCertificate();
        var current = new CurrentCertificate(this);
        return new SslClientAuthenticationOptions
        {
            LocalCertificateSelectionCallback = (_, _, _, _, _) => current.Get(),
            EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
            {
                if (certificate is null
                    || (errors & (SslPolicyErrors.RemoteCertificateNameMismatch | SslPolicyErrors.RemoteCertificateNotAvailable)) != 0)
                {
                    return false;
                }

                var presented = certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
                return PoolCertificateAuthority.Verifies(ca, presented)
                    && !current.Revoked().Contains(PoolCertificateAuthority.NormalizeSerial(presented.SerialNumber));
            },
        };
    }

    /// <summary>An HTTP handler for etcd's HTTP endpoints (<c>/health</c>, <c>/version</c>) with <see cref="ClientOptions"/>.</summary>
    public SocketsHttpHandler CreateHttpHandler() => new() { SslOptions = ClientOptions() };

    private string ReadRequired(string path) =>
        File.Exists(path) ? File.ReadAllText(path) : throw new PoolCertificateException($"{path} is missing: this host has no certificate of its pool's CA");

    private static void WriteFile(string path, string text) => PrivateFile.Replace(path, text.EndsWith('\n') ? text : text + "\n");

    /// <summary>This host's certificate as its files are now, read again when they change; the revocation list likewise.</summary>
    private sealed class CurrentCertificate(EtcdTlsFiles files)
    {
        private readonly Lock _lock = new();
        private (DateTime Written, X509Certificate2? Certificate) _certificate;
        private (DateTime Written, IReadOnlySet<string> Serials) _revoked = (DateTime.MinValue, new HashSet<string>());

        public X509Certificate2 Get()
        {
            lock (_lock)
            {
                var written = LastWrite(files.MemberBundleFile, files.CertificateFile);
                if (_certificate.Certificate is null || written != _certificate.Written)
                {
                    try
                    {
                        _certificate = (written, files.LoadCertificate());
                    }
                    catch (Exception ex) when (ex is System.Security.Cryptography.CryptographicException or IOException && _certificate.Certificate is not null)
                    {
                        // Caught between the writes of a refresh: the last pair read until the next handshake.
                    }
                }

                return _certificate.Certificate!;
            }
        }

        public IReadOnlySet<string> Revoked()
        {
            lock (_lock)
            {
                var written = File.GetLastWriteTimeUtc(files.RevocationListFile);
                if (written != _revoked.Written)
                {
                    _revoked = (written, files.RevokedSerials());
                }

                return _revoked.Serials;
            }
        }

        private static DateTime LastWrite(string preferred, string fallback) =>
            File.Exists(preferred) ? File.GetLastWriteTimeUtc(preferred) : File.GetLastWriteTimeUtc(fallback);
    }
}
