namespace Corral.Api.Client.Tls;

/// <summary>
/// Thrown by a server certificate check (<see cref="PinnedTls"/>) that refuses the certificate a server presented; its
/// message says why and what to do, and <see cref="JsonRpcXenApiClient"/> passes it on as the call's failure.
/// </summary>
public sealed class CertificateRejectedException : Exception
{
    public CertificateRejectedException(string message)
        : base(message)
    {
    }

    public CertificateRejectedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public CertificateRejectedException()
    {
    }
}
