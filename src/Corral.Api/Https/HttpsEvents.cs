using Microsoft.Extensions.Logging;

namespace Corral.Api.Https;

/// <summary>Event ids of the decisions about the host's certificate and its HTTP and HTTPS service.</summary>
public static class HttpsEvents
{
    public static readonly EventId CertificateCreated = new(4101, nameof(CertificateCreated));
    public static readonly EventId CertificateReused = new(4102, nameof(CertificateReused));
    public static readonly EventId CertificateRegenerated = new(4103, nameof(CertificateRegenerated));
    public static readonly EventId CertificateKeptDespiteNames = new(4104, nameof(CertificateKeptDespiteNames));
    public static readonly EventId CertificateUnreadable = new(4105, nameof(CertificateUnreadable));
    public static readonly EventId CertificateInstalled = new(4106, nameof(CertificateInstalled));
    public static readonly EventId CertificateReset = new(4107, nameof(CertificateReset));
    public static readonly EventId CertificateRecordReplaced = new(4110, nameof(CertificateRecordReplaced));
    public static readonly EventId CertificateRecordNotWritten = new(4111, nameof(CertificateRecordNotWritten));
    public static readonly EventId HttpClosed = new(4120, nameof(HttpClosed));
    public static readonly EventId HttpOpened = new(4121, nameof(HttpOpened));
    public static readonly EventId PeerCertificateRefused = new(4130, nameof(PeerCertificateRefused));
    public static readonly EventId PoolCertificatesLearnt = new(4131, nameof(PoolCertificatesLearnt));
    public static readonly EventId PeerCertificateUnchecked = new(4132, nameof(PeerCertificateUnchecked));
    public static readonly EventId TlsVerificationDisabled = new(4133, nameof(TlsVerificationDisabled));
    public static readonly EventId TlsVerificationEnabled = new(4134, nameof(TlsVerificationEnabled));
}
