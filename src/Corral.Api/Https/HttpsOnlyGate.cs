using Microsoft.Extensions.Logging;

namespace Corral.Api.Https;

/// <summary>
/// Whether this host's plain HTTP port is closed: <c>host.https_only</c>, which xapi applies by closing port 80 in the
/// host's firewall. Here the HTTP listener closes every connection at once, and any request still arriving on an
/// older keep-alive connection, so nothing is answered on it.
/// </summary>
public sealed class HttpsOnlyGate(ILogger<HttpsOnlyGate> logger)
{
    private volatile bool _httpsOnly;

    public bool HttpsOnly => _httpsOnly;

    /// <summary>Applies the host's <c>https_only</c> (from its record, or at once when set on this host).</summary>
    public void Apply(bool httpsOnly)
    {
        if (_httpsOnly == httpsOnly)
        {
            return;
        }

        _httpsOnly = httpsOnly;
        if (httpsOnly)
        {
            logger.LogWarning(HttpsEvents.HttpClosed, "host.https_only is true: plain HTTP closed, the XenAPI is served over HTTPS only");
        }
        else
        {
            logger.LogInformation(HttpsEvents.HttpOpened, "host.https_only is false: the XenAPI is served over plain HTTP too");
        }
    }
}
