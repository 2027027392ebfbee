using Corral.Api.Dispatch;
using Corral.Api.Operations;
using Corral.Api.Pool;
using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.Extensions.Logging;

namespace Corral.Api.Methods;

/// <summary>
/// A host's power, with xapi's messages and checks: <c>host.shutdown</c> and <c>host.reboot</c> (the host must be
/// disabled first: HOST_NOT_DISABLED), <c>host.restart_agent</c>, and <c>host.power_on</c> through the host's power-on
/// mode. The first three run as persisted operations of the host concerned (the host does the work, whichever host
/// took the call), the last on the host that took the call, as xapi runs it on the master.
/// </summary>
/// <remarks>
/// Corral has no power switch of its own machine: a shut-down host is one whose agent and etcd member have stopped, VMs
/// moved or stopped first, as a powered-off XenServer host would be; a rebooted host starts them again; and
/// <c>host.power_on</c> starts a powered-off host the way its power-on mode says (<c>IPMI</c>: the BMC; <c>lab</c>: the
/// lab's <c>./lab power-on</c>).
/// </remarks>
public sealed class HostPowerMethods(
    IPoolDatabase database,
    Placement placement,
    HostOperationQueue operations,
    IHostPowerControl power,
    ILogger<HostPowerMethods> logger) : IApiMethodProvider
{
    public void Register(ApiRegistry registry)
    {
        registry.Implement("host.shutdown", (ctx, a, ct) => PowerCycleAsync(ctx, (string)a[0]!, HostOperationKinds.HostShutdown, ct));
        registry.Implement("host.reboot", (ctx, a, ct) => PowerCycleAsync(ctx, (string)a[0]!, HostOperationKinds.HostReboot, ct));
        registry.Implement("host.restart_agent", async (ctx, a, ct) =>
        {
            var host = await LiveHostAsync((string)a[0]!, ct);
            await operations.RunAsync(HostOperationKinds.HostRestartAgent, host.Ref, host.Ref, new Dictionary<string, string>(), ctx, ct);
            return null;
        });
        registry.Implement("host.power_on", (ctx, a, ct) => PowerOnAsync(ctx, (string)a[0]!, ct));
    }

    private async Task<XenObject> LiveHostAsync(string hostRef, CancellationToken cancellationToken)
    {
        var host = await database.GetArgumentAsync(XenClasses.Host, hostRef, cancellationToken);
        if (!await placement.IsLiveAsync(host, cancellationToken))
        {
            throw new XenApiException(ErrorCodes.HostOffline, host.Ref);
        }

        return host;
    }

    /// <summary>
    /// <c>host.shutdown</c> / <c>host.reboot</c>: xapi's checks here (the host disabled, no other shutdown or reboot of
    /// it under way), the rest on the host (HA's statefile reachable, the pool database keeping its quorum), which then
    /// moves or stops its VMs and goes down. The call returns once the host is on its way down.
    /// </summary>
    private async Task<object?> PowerCycleAsync(CallContext context, string hostRef, string kind, CancellationToken cancellationToken)
    {
        var host = await LiveHostAsync(hostRef, cancellationToken);
        CheckNoPowerOperation(host);
        if (host.Get(XenApi.Host.Enabled))
        {
            throw new XenApiException(ErrorCodes.HostNotDisabled);
        }

        logger.LogInformation("{Operation} of host {Host} requested", kind, host.Get(XenApi.Host.NameLabel));
        await operations.RunAsync(kind, host.Ref, host.Ref, new Dictionary<string, string>(), context, cancellationToken);
        return null;
    }

    /// <summary>OTHER_OPERATION_IN_PROGRESS while the host is already being shut down, rebooted or powered on.</summary>
    public static void CheckNoPowerOperation(XenObject host)
    {
        foreach (var (task, operation) in (Dictionary<string, object?>)host["current_operations"]!)
        {
            if ((string?)operation is "shutdown" or "reboot" or "power_on")
            {
                throw new XenApiException(ErrorCodes.OtherOperationInProgress, XenClasses.Host, host.Ref, (string)operation!, task);
            }
        }
    }

    /// <summary>
    /// <c>host.power_on</c>: only for a host that is not live (HOST_IS_LIVE) and has a power-on mode
    /// (HOST_POWER_ON_MODE_DISABLED); marked in its <c>current_operations</c> while it runs, as xapi does.
    /// </summary>
    private async Task<object?> PowerOnAsync(CallContext context, string hostRef, CancellationToken cancellationToken)
    {
        var host = await database.GetArgumentAsync(XenClasses.Host, hostRef, cancellationToken);
        if (await placement.IsLiveAsync(host, cancellationToken))
        {
            throw new XenApiException(ErrorCodes.HostIsLive, host.Ref);
        }

        if (host.Get(XenApi.Host.PowerOnMode).Length == 0)
        {
            throw new XenApiException(ErrorCodes.HostPowerOnModeDisabled);
        }

        CheckNoPowerOperation(host);
        var key = context.TaskRef ?? OpaqueRef.New();
        await SetOperationAsync(host.Ref, key, HostAllowedOperations.PowerOn, cancellationToken);
        try
        {
            logger.LogInformation("Powering on host {Host} ({Mode})", host.Get(XenApi.Host.NameLabel), host.Get(XenApi.Host.PowerOnMode));
            await power.PowerOnAsync(host, cancellationToken);
        }
        finally
        {
            await SetOperationAsync(host.Ref, key, null, CancellationToken.None);
        }

        return null;
    }

    private Task SetOperationAsync(string hostRef, string key, HostAllowedOperations? operation, CancellationToken cancellationToken) =>
        database.UpdateAsync([(XenClasses.Host, hostRef)], (objs, tx) =>
        {
            var h = objs[0].Clone();
            var current = h.Get(XenApi.Host.CurrentOperations).ToDictionary();
            if (operation is not { } op)
            {
                current.Remove(key);
            }
            else
            {
                current[key] = op;
            }

            h.Set(XenApi.Host.CurrentOperations, current);
            tx.Update(h);
        }, cancellationToken);
}
