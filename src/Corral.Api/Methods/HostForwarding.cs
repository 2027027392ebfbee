using Corral.Api.Pool;
using Corral.Model;

namespace Corral.Api.Methods;

/// <summary>
/// A message about one host, made on that host, as xapi forwards it: over the pool's pinned HTTPS
/// (<see cref="RemoteHosts"/>), with the caller's session (valid pool-wide); <c>HOST_OFFLINE</c> when the host is not
/// live or cannot be reached. The host's own errors come back as they are.
/// </summary>
public sealed class HostForwarding(Placement placement, RemoteHosts remote)
{
    public async Task<object?> CallAsync(XenObject host, string method, IReadOnlyList<object?> parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(host);
        if (!await placement.IsLiveAsync(host, cancellationToken))
        {
            throw new XenApiException(ErrorCodes.HostOffline, host.Ref);
        }

        try
        {
            using var client = await remote.ConnectAsync(host.Get(XenApi.Host.Address), cancellationToken);
            return await client.CallAsync(method, parameters, cancellationToken);
        }
        catch (Corral.Api.Client.XenApiTransportException)
        {
            throw new XenApiException(ErrorCodes.HostOffline, host.Ref);
        }
    }
}
