using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Api.Https;

/// <summary>
/// The pool's revoked certificates, in the pool database: one key per serial number (hex, upper case, no leading zero
/// bytes) under <see cref="Prefix"/>, its value the time of revocation. A host's etcd certificate goes here when the
/// host leaves the pool or the certificate is replaced (<c>host.refresh_server_certificate</c>); every host writes the
/// list, signed by the pool's CA, where its etcd member reads it. Keys are only added: a certificate once revoked stays so.
/// </summary>
public static class PoolCertificateRevocations
{
    public const string Prefix = PoolKeys.Root + "tls/revoked/";

    public static string Key(string serial) => Prefix + Normalize(serial);

    /// <summary>Upper-case hex without separators or leading zero bytes (a serial number as an integer, which etcd compares).</summary>
    public static string Normalize(string serial)
    {
        var hex = serial.Trim().Replace(":", "", StringComparison.Ordinal).ToUpperInvariant();
        while (hex.Length > 2 && hex.StartsWith("00", StringComparison.Ordinal))
        {
            hex = hex[2..];
        }

        return hex;
    }

    /// <summary>The revoked serial numbers.</summary>
    public static async Task<IReadOnlyCollection<string>> ReadAsync(IPoolDatabase database, CancellationToken cancellationToken) =>
        (await database.Leases.GetPrefixAsync(Prefix, cancellationToken)).Keys.Select(k => k[Prefix.Length..]).ToList();

    /// <summary>Adds the revocation of the certificate <paramref name="pem"/> to <paramref name="tx"/>; false if it is not a certificate.</summary>
    public static bool Revoke(PoolTransaction tx, string? pem, DateTimeOffset now)
    {
        if (SerialOf(pem) is not { } serial)
        {
            return false;
        }

        tx.PutKey(Key(serial), now.UtcDateTime.ToString("O", CultureInfo.InvariantCulture));
        return true;
    }

    /// <summary>
    /// Revokes the etcd certificates (records of type <c>host_internal</c>) among a leaving host's
    /// <paramref name="certificates"/>, before their records go: a copy kept by someone who had root on it is refused by
    /// every member from the next connection on.
    /// </summary>
    public static async Task RevokeHostAsync(IPoolDatabase database, IEnumerable<XenObject> certificates, CancellationToken cancellationToken)
    {
        var tx = new PoolTransaction();
        var any = false;
        foreach (var record in certificates.Where(c => c.Get(XenApi.Certificate.Type) == CertificateType.HostInternal))
        {
            any |= Revoke(tx, await database.Leases.GetValueAsync(PoolKeys.CertificatePem(record.Ref), cancellationToken), DateTimeOffset.UtcNow);
        }

        if (any)
        {
            await database.CommitAsync(tx, cancellationToken);
        }
    }

    /// <summary>The serial number of a PEM certificate, null if it cannot be read.</summary>
    public static string? SerialOf(string? pem)
    {
        if (string.IsNullOrEmpty(pem))
        {
            return null;
        }

        try
        {
            using var certificate = X509Certificate2.CreateFromPem(pem);
            return Normalize(certificate.SerialNumber);
        }
        catch (CryptographicException)
        {
            return null;
        }
    }
}
