using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Corral.Api.Client.Tls;

/// <summary>
/// A certificate's fingerprint as xapi writes it in <c>Certificate.fingerprint</c>: the hash of the DER encoding, in
/// upper-case hex with a colon between bytes (<c>AB:01:...</c>). xapi's <c>fingerprint</c> field is the SHA-256 one.
/// </summary>
public static class CertificateFingerprint
{
    public static string Sha256(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        return Format(SHA256.HashData(certificate.RawData));
    }

    public static string Sha1(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        return Format(certificate.GetCertHash(HashAlgorithmName.SHA1));
    }

    /// <summary>Bytes as <c>AB:01:FF</c>.</summary>
    public static string Format(ReadOnlySpan<byte> hash) => string.Join(':', hash.ToArray().Select(b => b.ToString("X2", System.Globalization.CultureInfo.InvariantCulture)));

    /// <summary>Whether two fingerprints name the same hash, whatever their case.</summary>
    public static bool Same(string? a, string? b) => a is not null && b is not null && string.Equals(a.Trim(), b.Trim(), StringComparison.OrdinalIgnoreCase);
}
