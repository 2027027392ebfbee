using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;

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
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>The directory's name in the agent's state directory.</summary>
    public const string DirectoryName = "etcd-tls";

    public string Directory => directory;

    public string CaCertificateFile => Path.Combine(directory, "pool-ca.pem");

    public string CaKeyFile => Path.Combine(directory, "pool-ca.key");

    public string CertificateFile => Path.Combine(directory, "host.pem");

    public string KeyFile => Path.Combine(directory, "host.key");

    public bool Exists => new[] { CaCertificateFile, CaKeyFile, CertificateFile, KeyFile }.All(File.Exists);

    /// <summary>
    /// etcd's flags for a member serving with these files: this host's certificate on the client and peer ports, and
    /// only certificates of the pool's CA accepted on either (a client without one is refused in the TLS handshake).
    /// </summary>
    public IReadOnlyList<string> MemberArguments() =>
    [
        "--cert-file", CertificateFile, "--key-file", KeyFile, "--trusted-ca-file", CaCertificateFile, "--client-cert-auth",
        "--peer-cert-file", CertificateFile, "--peer-key-file", KeyFile, "--peer-trusted-ca-file", CaCertificateFile, "--peer-client-cert-auth",
    ];

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
    public X509Certificate2 LoadCertificate() => X509Certificate2.CreateFromPem(ReadRequired(CertificateFile), ReadRequired(KeyFile));

    /// <summary>
    /// TLS for a client of the pool's etcd: this host's certificate presented, the member's checked against the pool's
    /// CA alone (not the system's CAs) and for the address dialled.
    /// </summary>
    public SslClientAuthenticationOptions ClientOptions()
    {
        var ca = LoadCaCertificate();
        return new SslClientAuthenticationOptions
        {
            ClientCertificates = [LoadCertificate()],
            EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
                certificate is not null
                && (errors & (SslPolicyErrors.RemoteCertificateNameMismatch | SslPolicyErrors.RemoteCertificateNotAvailable)) == 0
                && PoolCertificateAuthority.Verifies(ca, certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData())),
        };
    }

    /// <summary>An HTTP handler for etcd's HTTP endpoints (<c>/health</c>, <c>/version</c>) with <see cref="ClientOptions"/>.</summary>
    public SocketsHttpHandler CreateHttpHandler() => new() { SslOptions = ClientOptions() };

    private string ReadRequired(string path) =>
        File.Exists(path) ? File.ReadAllText(path) : throw new PoolCertificateException($"{path} is missing: this host has no certificate of its pool's CA");

    private static void WriteFile(string path, string text)
    {
        var temporary = path + ".tmp";
        File.Delete(temporary);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = OwnerOnly;
        }

        using (var stream = new FileStream(temporary, options))
        using (var writer = new StreamWriter(stream))
        {
            writer.Write(text.EndsWith('\n') ? text : text + "\n");
        }

        File.Move(temporary, path, overwrite: true);
    }
}
