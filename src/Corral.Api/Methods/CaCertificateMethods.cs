using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Corral.Api.Dispatch;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Api.Methods;

/// <summary>
/// The pool's trusted CA certificates, as xapi keeps them (<c>pool.install_ca_certificate</c>,
/// <c>pool.uninstall_ca_certificate</c>, the deprecated <c>pool.certificate_install</c>/<c>_uninstall</c>/<c>_list</c>):
/// a <c>Certificate</c> record of type <c>ca</c> (its name, validity and SHA-256 fingerprint) and its PEM, which every
/// host writes to its trusted directory (<see cref="Https.TrustedCaDirectory"/>). TLS to the pool's external directory
/// (LDAPS, Active Directory) trusts these, as xapi's AD plugin does. Names are xapi's: letters, digits, '.', '_', '-',
/// ending in <c>.pem</c>, not starting with '.'. As in xapi, an install or uninstall returns once every live host has its
/// copy up to date (<see cref="CertificateDistribution"/>), so the next call (enabling the directory) trusts it.
/// </summary>
public sealed class CaCertificateMethods(IPoolDatabase database, CertificateDistribution distribution) : IApiMethodProvider
{
    /// <summary>A certificate PEM past this size is refused as corrupt.</summary>
    public const int MaxPemLength = 64 * 1024;

    public void Register(ApiRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        foreach (var name in new[] { "pool.install_ca_certificate", "pool.certificate_install" })
        {
            registry.Implement(name, async (ctx, a, ct) =>
            {
                await InstallAsync((string)a[0]!, (string)a[1]!, ct);
                await distribution.SyncLiveHostsAsync(ctx, except: null, ct);
                return null;
            });
        }

        foreach (var name in new[] { "pool.uninstall_ca_certificate", "pool.certificate_uninstall" })
        {
            registry.Implement(name, async (ctx, a, ct) =>
            {
                await UninstallAsync((string)a[0]!, ct);
                await distribution.SyncLiveHostsAsync(ctx, except: null, ct);
                return null;
            });
        }

        registry.Implement("pool.certificate_list", async (_, _, ct) =>
            (await CaRecordsAsync(ct)).Select(c => (object?)c.Get(XenApi.Certificate.Name)).Order().ToList());
    }

    /// <summary>The key that holds a CA certificate's name while it is installed (two installs of one name cannot both win).</summary>
    public static string NameKey(string name) => PoolKeys.Root + "ca-certificate-name/" + name;

    private async Task InstallAsync(string name, string pem, CancellationToken cancellationToken)
    {
        if (!IsSafeName(name))
        {
            throw new XenApiException(ErrorCodes.CertificateNameInvalid, name);
        }

        using var certificate = Parse(name, pem);
        var tx = new PoolTransaction();
        tx.Require(NameKey(name), 0);
        var record = tx.Create(XenApi.Certificate.Schema);
        record.Set(XenApi.Certificate.Name, name);
        record.Set(XenApi.Certificate.Type, CertificateType.Ca);
        record.Set(XenApi.Certificate.Host, OpaqueRef.Null);
        record.Set(XenApi.Certificate.NotBefore, certificate.NotBefore.ToUniversalTime());
        record.Set(XenApi.Certificate.NotAfter, certificate.NotAfter.ToUniversalTime());
        record.Set(XenApi.Certificate.Fingerprint, Client.Tls.CertificateFingerprint.Sha256(certificate));
        tx.PutKey(NameKey(name), record.Ref);
        tx.PutKey(PoolKeys.CertificatePem(record.Ref), certificate.ExportCertificatePem());
        if (!await database.TryCommitAsync(tx, cancellationToken))
        {
            throw new XenApiException(ErrorCodes.CertificateAlreadyExists, name);
        }
    }

    private async Task UninstallAsync(string name, CancellationToken cancellationToken)
    {
        var record = (await CaRecordsAsync(cancellationToken)).FirstOrDefault(c => c.Get(XenApi.Certificate.Name) == name)
            ?? throw new XenApiException(ErrorCodes.CertificateDoesNotExist, name);
        var tx = new PoolTransaction();
        tx.Delete(record);
        tx.DeleteKey(PoolKeys.CertificatePem(record.Ref));
        tx.DeleteKey(NameKey(name));
        await database.CommitAsync(tx, cancellationToken);
    }

    private Task<IReadOnlyList<XenObject>> CaRecordsAsync(CancellationToken cancellationToken) => CaRecordsAsync(database, cancellationToken);

    /// <summary>The pool's trusted CA certificates' records (type <c>ca</c>).</summary>
    public static async Task<IReadOnlyList<XenObject>> CaRecordsAsync(IPoolDatabase database, CancellationToken cancellationToken) =>
        (await database.GetAllAsync(XenApi.Certificate.ClassName, cancellationToken)).Where(c => c.Get(XenApi.Certificate.Type) == CertificateType.Ca).ToList();

    /// <summary>One PEM certificate (a CA's, or a server's own to pin it), as xapi reads it; CERTIFICATE_CORRUPT otherwise.</summary>
    private static X509Certificate2 Parse(string name, string pem)
    {
        try
        {
            if (pem.Length is 0 or > MaxPemLength)
            {
                throw new CryptographicException("empty or too long");
            }

            return X509Certificate2.CreateFromPem(pem);
        }
        catch (CryptographicException)
        {
            throw new XenApiException(ErrorCodes.CertificateCorrupt, name);
        }
    }

    /// <summary>xapi's rule: letters, digits, '.', '_', '-', ending in .pem, not starting with '.'.</summary>
    public static bool IsSafeName(string name) =>
        name.Length is > 4 and <= 255 && name[0] != '.' && name.EndsWith(".pem", StringComparison.Ordinal)
        && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-');
}
