using Corral.Api.Dispatch;
using Corral.Api.Https;
using Corral.Api.Sessions;
using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.Extensions.Options;

namespace Corral.Api.Methods;

/// <summary>
/// The host's certificate and plain-HTTP service: <c>host.get_server_certificate</c> (the PEM the host serves on
/// HTTPS), <c>host.set_https_only</c> and <c>pool.set_https_only</c> (port 80 closed or open; each host applies its own
/// <c>https_only</c>). <c>Certificate</c> records themselves are read through the generic getters.
/// </summary>
public sealed class CertificateMethods(IPoolDatabase database, HttpsOnlyGate gate, IOptions<ApiOptions> options) : IApiMethodProvider
{
    public void Register(ApiRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        registry.Implement("host.get_server_certificate", (_, a, ct) => ServerCertificateAsync((string)a[0]!, ct));
        registry.Implement("host.set_https_only", async (_, a, ct) =>
        {
            await SetHttpsOnlyAsync((string)a[0]!, (bool)a[1]!, ct);
            return null;
        });
        registry.Implement("pool.set_https_only", async (_, a, ct) =>
        {
            await database.GetArgumentAsync(XenClasses.Pool, (string)a[0]!, ct);
            foreach (var host in await database.GetAllAsync(XenClasses.Host, ct))
            {
                await SetHttpsOnlyAsync(host.Ref, (bool)a[1]!, ct);
            }

            return null;
        });
    }

    private async Task<object?> ServerCertificateAsync(string hostRef, CancellationToken cancellationToken)
    {
        await database.GetArgumentAsync(XenClasses.Host, hostRef, cancellationToken);
        var record = (await database.GetAllAsync(XenApi.Certificate.ClassName, cancellationToken))
            .FirstOrDefault(c => c.Get(XenApi.Certificate.Host) == hostRef && c.Get(XenApi.Certificate.Type) == CertificateType.Host);
        var pem = record is null ? null : await database.Leases.GetValueAsync(PoolKeys.CertificatePem(record.Ref), cancellationToken);
        return pem ?? throw new XenApiException(ErrorCodes.InternalError, $"The host {hostRef} has not recorded its server certificate yet");
    }

    private async Task SetHttpsOnlyAsync(string hostRef, bool value, CancellationToken cancellationToken)
    {
        await database.GetArgumentAsync(XenClasses.Host, hostRef, cancellationToken);
        await database.UpdateAsync([(XenClasses.Host, hostRef)], (objs, tx) =>
        {
            var host = objs[0].Clone();
            host.Set(XenApi.Host.HttpsOnly, value);
            tx.Update(host);
        }, cancellationToken);
        if (hostRef == options.Value.HostRef)
        {
            // This host's port 80 at once; the others follow their record within seconds (HttpsOnlyWatch).
            gate.Apply(value);
        }
    }
}
