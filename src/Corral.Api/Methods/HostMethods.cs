using Corral.Api.Dispatch;
using Corral.Api.HighAvailability;
using Corral.Api.Pool;
using Corral.Api.Sessions;
using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.Extensions.Options;

namespace Corral.Api.Methods;

/// <summary>host and pool messages of the foundation: enable/disable, time, free memory, and pool-wide settings.</summary>
public sealed class HostMethods(IPoolDatabase database, FailoverPlanning planning, Placement placement, HostForwarding forwarding, IOptions<ApiOptions> options)
    : IApiMethodProvider
{
    public void Register(ApiRegistry registry)
    {
        registry.Add("host.disable", (_, a, ct) => SetEnabledAsync((string)a[0]!, false, ct), ("host", FieldType.String));
        registry.Add("host.enable", (_, a, ct) => SetEnabledAsync((string)a[0]!, true, ct), ("host", FieldType.String));
        registry.Implement("host.get_servertime", (ctx, a, ct) => ServerTimeAsync(ctx, (string)a[0]!, local: false, ct));
        registry.Implement("host.get_server_localtime", (ctx, a, ct) => ServerTimeAsync(ctx, (string)a[0]!, local: true, ct));
        registry.Implement("host.compute_free_memory", async (_, a, ct) =>
        {
            // As xapi: what a VM could still have on the host, after what it keeps for itself and what its VMs (those
            // running there, and those on their way) take; never negative.
            var host = await database.GetArgumentAsync(XenClasses.Host, (string)a[0]!, ct);
            return Math.Max(0, (await placement.FreeMemoryByHostAsync(ct)).GetValueOrDefault(host.Ref));
        });
        registry.Implement("host.compute_memory_overhead", async (_, a, ct) =>
            (await database.GetArgumentAsync(XenClasses.Host, (string)a[0]!, ct)).Get(XenApi.Host.MemoryOverhead) + Placement.HostReserveBytes);
        registry.Implement("pool.get_license_state", async (_, a, ct) =>
        {
            await database.GetArgumentAsync(XenClasses.Pool, (string)a[0]!, ct);
            // Corral's hosts all report the same edition, and nothing of Corral expires.
            return new Dictionary<string, object?> { ["edition"] = HostLicense.Edition, ["expiry"] = "never" };
        });
        registry.Implement("host.set_iscsi_iqn", (_, a, ct) => SetIscsiIqnAsync((string)a[0]!, (string)a[1]!, ct));
        registry.Add("pool.get_master", async (_, a, ct) =>
            (await database.GetAsync(XenClasses.Pool, (string)a[0]!, ct)).Get(XenApi.Pool.Master), ("self", FieldType.String));
    }

    private async Task<object?> SetEnabledAsync(string hostRef, bool enabled, CancellationToken cancellationToken)
    {
        if (!OpaqueRef.IsWellFormed(hostRef))
        {
            throw XenApiException.HandleInvalid(XenClasses.Host, hostRef);
        }

        if (!enabled)
        {
            // As xapi: with HA on, a disabled host offers no room for restarts, which may break the failover plan.
            await planning.CheckHostDisableAsync(hostRef, cancellationToken);
        }

        await database.UpdateAsync([(XenClasses.Host, hostRef)], (objs, tx) =>
        {
            var h = objs[0].Clone();
            h.Set(XenApi.Host.Enabled, enabled);
            tx.Update(h);
        }, cancellationToken);
        return null;
    }

    /// <summary>
    /// As xapi: the host's initiator name, in the field and in other_config (which SM reads); INVALID_VALUE when empty. The
    /// host's iSCSI sessions log in under it from their next connection (each plug, copy or VM start makes its own).
    /// </summary>
    private async Task<object?> SetIscsiIqnAsync(string hostRef, string value, CancellationToken cancellationToken)
    {
        var host = await database.GetArgumentAsync(XenClasses.Host, hostRef, cancellationToken);
        if (value.Length == 0)
        {
            throw new XenApiException(ErrorCodes.InvalidValue, "value", value);
        }

        await database.UpdateAsync([(XenClasses.Host, host.Ref)], (objs, tx) =>
        {
            var h = objs[0].Clone();
            h.Set(XenApi.Host.IscsiIqn, value);
            h.Set(XenApi.Host.OtherConfig, new Dictionary<string, string>(h.Get(XenApi.Host.OtherConfig), StringComparer.Ordinal) { ["iscsi_iqn"] = value });
            tx.Update(h);
        }, cancellationToken);
        return null;
    }

    /// <summary>
    /// The host's own clock, as xapi asks the host itself: UTC for <c>get_servertime</c>, the local wall time (no zone)
    /// for <c>get_server_localtime</c>. Another host of the pool is asked over its API with the caller's session.
    /// </summary>
    private async Task<object?> ServerTimeAsync(CallContext context, string hostRef, bool local, CancellationToken cancellationToken)
    {
        var host = await database.GetArgumentAsync(XenClasses.Host, hostRef, cancellationToken);
        if (host.Ref == options.Value.HostRef)
        {
            return local ? DateTime.Now : DateTime.UtcNow;
        }

        var method = local ? "host.get_server_localtime" : "host.get_servertime";
        var answer = await forwarding.CallAsync(host, method, [context.SessionRef, host.Ref], cancellationToken);
        return answer switch
        {
            DateTime time => time,
            string text => XenDateTime.ParseKeepingLocal(text),
            _ => throw new XenApiException(ErrorCodes.InternalError, $"host {host.Ref} answered {method} with {answer}"),
        };
    }
}
