namespace Corral.Auth.Ldap;

/// <summary>
/// Which certificates LDAPS to the pool's directory trusts (section <c>Corral:Auth:Tls</c>), as xapi trusts the CA
/// certificates installed for it: a directory of PEM files (CAs, or a server's own certificate). When it holds any,
/// they alone are trusted, for each connection (the server's name or address must be in the certificate); when it is
/// unset or empty, the machine's store is.
/// </summary>
public sealed class DirectoryTlsOptions
{
    public string TrustedCertificatesDirectory { get; set; } = "";

    /// <summary>The directory when it holds a certificate; null otherwise.</summary>
    public string? Effective =>
        TrustedCertificatesDirectory.Length > 0 && Directory.Exists(TrustedCertificatesDirectory)
        && Directory.EnumerateFiles(TrustedCertificatesDirectory).Any() ? TrustedCertificatesDirectory : null;
}
