using Corral.Api.Client.Tls;
using Corral.Cli.Api;

namespace Corral.Cli.Tests;

/// <summary>xe's trust in a server's self-signed certificate: on first use, then pinned, a change refused.</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class ServerCertificateTrustTests : IDisposable
{
    private readonly string _home = Directory.CreateTempSubdirectory("corral-xe-trust-").FullName;

    public void Dispose() => Directory.Delete(_home, recursive: true);

    private KnownServers Store() => KnownServers.ForUser(name => name == "HOME" ? _home : null);

    [Fact]
    public void A_new_server_is_trusted_on_first_use_and_remembered_with_a_note()
    {
        using var certificate = TestCertificates.SelfSigned("lab-host1");
        var notes = new StringWriter();
        new ServerCertificateTrust(Store(), notes).Check("10.9.0.11", 443, certificate);

        var fingerprint = CertificateFingerprint.Sha256(certificate);
        Assert.Equal(fingerprint, Store().Find("10.9.0.11", 443));
        Assert.Null(Store().Find("10.9.0.11", 8443));
        var path = Path.Combine(_home, ".config", "corral", "xe-known-servers");
        Assert.Equal(path, Store().Path);
        Assert.Contains($"10.9.0.11 443 {fingerprint}", File.ReadAllText(path), StringComparison.Ordinal);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.Equal($"Note: first connection to 10.9.0.11:443; its certificate (SHA-256 {fingerprint}) is trusted from now on (kept in {path}).\n", notes.ToString());
    }

    [Fact]
    public void The_same_certificate_again_is_accepted_quietly()
    {
        using var certificate = TestCertificates.SelfSigned("lab-host1");
        new ServerCertificateTrust(Store(), new StringWriter()).Check("10.9.0.11", 443, certificate);

        var notes = new StringWriter();
        new ServerCertificateTrust(Store(), notes).Check("10.9.0.11", 443, certificate);
        Assert.Equal("", notes.ToString());
    }

    [Fact]
    public void A_changed_certificate_is_refused_with_both_fingerprints_and_how_to_accept_it()
    {
        using var first = TestCertificates.SelfSigned("lab-host1");
        using var second = TestCertificates.SelfSigned("lab-host1");
        new ServerCertificateTrust(Store(), new StringWriter()).Check("10.9.0.11", 443, first);

        var notes = new StringWriter();
        var refused = Assert.Throws<CertificateRejectedException>(() => new ServerCertificateTrust(Store(), notes).Check("10.9.0.11", 443, second));
        Assert.Contains($"The certificate of 10.9.0.11:443 has changed: xe trusts SHA-256 {CertificateFingerprint.Sha256(first)}, the server presented SHA-256 {CertificateFingerprint.Sha256(second)}",
            refused.Message, StringComparison.Ordinal);
        Assert.Contains($"removing the line starting with \"10.9.0.11 443 \" from {Store().Path}", refused.Message, StringComparison.Ordinal);
        // Nothing changed: the old certificate stays trusted until the user removes it.
        Assert.Equal(CertificateFingerprint.Sha256(first), Store().Find("10.9.0.11", 443));
        Assert.Equal("", notes.ToString());

        // Done as the message says, the new certificate is trusted on its first use.
        var path = Store().Path!;
        File.WriteAllLines(path, File.ReadAllLines(path).Where(l => !l.StartsWith(KnownServers.LineStart("10.9.0.11", 443), StringComparison.Ordinal)));
        new ServerCertificateTrust(Store(), new StringWriter()).Check("10.9.0.11", 443, second);
        Assert.Equal(CertificateFingerprint.Sha256(second), Store().Find("10.9.0.11", 443));
    }

    [Fact]
    public void Without_a_home_nothing_is_kept_and_the_certificate_is_accepted_with_a_note()
    {
        using var certificate = TestCertificates.SelfSigned("lab-host1");
        var store = KnownServers.ForUser(_ => null);
        var notes = new StringWriter();
        new ServerCertificateTrust(store, notes).Check("10.9.0.11", 443, certificate);
        Assert.Null(store.Path);
        Assert.Null(store.Find("10.9.0.11", 443));
        Assert.StartsWith("Note: the certificate of 10.9.0.11:443", notes.ToString(), StringComparison.Ordinal);
    }
}
