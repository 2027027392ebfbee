using System.Security.Cryptography.X509Certificates;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Api.Https;

/// <summary>
/// A host's <c>Certificate</c> records of one type (<c>host</c> for the certificate it serves, <c>host_internal</c> for
/// its pool certificate), as xapi records them: which one names the certificate the host has now, which are stale, and
/// a new record with its PEM beside it.
/// </summary>
public static class HostCertificateRecord
{
    /// <summary>Of <paramref name="all"/>, the host's record of <paramref name="type"/> for <paramref name="fingerprint"/>, and its others.</summary>
    public static (XenObject? Current, IReadOnlyList<XenObject> Stale) Find(IReadOnlyList<XenObject> all, string hostRef, CertificateType type, string fingerprint)
    {
        var mine = all.Where(c => c.Get(XenApi.Certificate.Host) == hostRef && c.Get(XenApi.Certificate.Type) == type).ToList();
        var current = mine.FirstOrDefault(c => Client.Tls.CertificateFingerprint.Same(c.Get(XenApi.Certificate.Fingerprint), fingerprint));
        return (current, mine.Where(c => c != current).ToList());
    }

    /// <summary>Adds to <paramref name="tx"/> the record: no name, its type and host, validity and SHA-256 fingerprint; and its PEM.</summary>
    public static void Add(PoolTransaction tx, string hostRef, CertificateType type, X509Certificate2 certificate, string fingerprint, string pem)
    {
        ArgumentNullException.ThrowIfNull(tx);
        ArgumentNullException.ThrowIfNull(certificate);
        var record = tx.Create(XenApi.Certificate.Schema);
        record.Set(XenApi.Certificate.Name, "");
        record.Set(XenApi.Certificate.Type, type);
        record.Set(XenApi.Certificate.Host, hostRef);
        record.Set(XenApi.Certificate.NotBefore, certificate.NotBefore.ToUniversalTime());
        record.Set(XenApi.Certificate.NotAfter, certificate.NotAfter.ToUniversalTime());
        record.Set(XenApi.Certificate.Fingerprint, fingerprint);
        tx.PutKey(PoolKeys.CertificatePem(record.Ref), pem);
    }
}
