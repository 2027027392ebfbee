using Corral.Api.Client;
using Corral.Api.Sessions;
using Microsoft.Extensions.Options;

namespace Corral.Api.Pool;

/// <summary>Calls from this host to another host's XenAPI, as xapi's hosts call one another.</summary>
public sealed class RemoteHosts(IOptions<ApiOptions> options)
{
    /// <summary>A client for the host at <paramref name="address"/> (<c>host</c> or <c>host:port</c>).</summary>
    public JsonRpcXenApiClient Connect(string address)
    {
        var port = options.Value.PeerPort;
        var host = address;
        var colon = address.LastIndexOf(':');
        if (colon > 0 && !address.EndsWith(']') && address.Count(c => c == ':') == 1 && int.TryParse(address[(colon + 1)..], out var p))
        {
            host = address[..colon];
            port = p;
        }

        return new JsonRpcXenApiClient(JsonRpcXenApiClient.EndpointFor(host, port), userAgent: "corral-agent");
    }
}
