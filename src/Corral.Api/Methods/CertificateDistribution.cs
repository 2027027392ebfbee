using Corral.Api.Dispatch;
using Corral.Api.Operations;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Api.Methods;

/// <summary>
/// Brings every live host's copies of the pool's certificates up to date now, as xapi's <c>Cert_distrib.copy_certs_to_all</c>
/// does before a certificate call returns: each runs its <c>host.certificate_sync</c> operation (its TLS files, revocation
/// list and trusted CA certificates, rewritten from the pool database). A host that is down does it when it starts.
/// </summary>
public sealed class CertificateDistribution(IPoolDatabase database, Placement placement, HostOperationQueue operations)
{
    /// <summary>Every live host but <paramref name="except"/>, one after the other.</summary>
    public async Task SyncLiveHostsAsync(CallContext context, string? except, CancellationToken cancellationToken)
    {
        foreach (var host in await database.GetAllAsync(XenClasses.Host, cancellationToken))
        {
            if (host.Ref != except && await placement.IsLiveAsync(host, cancellationToken))
            {
                await operations.RunAsync(HostOperationKinds.HostCertificateSync, host.Ref, host.Ref, new Dictionary<string, string>(), context, cancellationToken);
            }
        }
    }
}
