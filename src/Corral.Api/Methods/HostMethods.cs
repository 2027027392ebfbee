using Corral.Api.Dispatch;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Api.Methods;

/// <summary>host and pool messages of the foundation: enable/disable, time, and pool-wide settings.</summary>
public sealed class HostMethods(IPoolDatabase database) : IApiMethodProvider
{
    public void Register(ApiRegistry registry)
    {
        registry.Add("host.disable", (_, a, ct) => SetEnabledAsync((string)a[0]!, false, ct), ("host", FieldType.String));
        registry.Add("host.enable", (_, a, ct) => SetEnabledAsync((string)a[0]!, true, ct), ("host", FieldType.String));
        registry.Add("host.get_servertime", (_, _, _) => Task.FromResult<object?>(DateTime.UtcNow), ("host", FieldType.String));
        registry.Add("host.get_server_localtime", (_, _, _) => Task.FromResult<object?>(DateTime.Now), ("host", FieldType.String));
        registry.Add("pool.get_master", async (_, a, ct) =>
            (await database.GetAsync(XenClasses.Pool, (string)a[0]!, ct).ConfigureAwait(false)).GetString("master"), ("self", FieldType.String));
    }

    private async Task<object?> SetEnabledAsync(string hostRef, bool enabled, CancellationToken cancellationToken)
    {
        if (!OpaqueRef.IsWellFormed(hostRef))
        {
            throw XenApiException.HandleInvalid(XenClasses.Host, hostRef);
        }

        await database.UpdateAsync([(XenClasses.Host, hostRef)], (objs, tx) =>
        {
            var h = objs[0].Clone();
            h["enabled"] = enabled;
            tx.Update(h);
        }, cancellationToken).ConfigureAwait(false);
        return null;
    }
}
