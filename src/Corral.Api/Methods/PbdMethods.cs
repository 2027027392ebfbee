using Corral.Api.Dispatch;
using Corral.Api.Operations;
using Corral.HighAvailability;
using Corral.Model;
using Corral.PoolDatabase;
using Corral.Storage;

namespace Corral.Api.Methods;

/// <summary>
/// PBD messages: a PBD ties an SR to a host. create and destroy are records (destroy refused while plugged); plug and
/// unplug run on the PBD's host, which reaches the SR's storage through its driver (or lets go of it).
/// </summary>
public sealed class PbdMethods(IPoolDatabase database, Placement placement, HostOperationQueue operations, SrDrivers drivers) : IApiMethodProvider
{
    public void Register(ApiRegistry registry)
    {
        registry.Implement("PBD.create", (_, a, ct) => CreateAsync((Dictionary<string, object?>)a[0]!, ct));
        registry.Implement("PBD.destroy", (_, a, ct) => DestroyAsync((string)a[0]!, ct));
        registry.Implement("PBD.plug", (ctx, a, ct) => PlugAsync(ctx, (string)a[0]!, ct));
        registry.Implement("PBD.unplug", (ctx, a, ct) => UnplugAsync(ctx, (string)a[0]!, ct));
    }

    private async Task<object?> CreateAsync(Dictionary<string, object?> record, CancellationToken cancellationToken)
    {
        var host = await database.GetArgumentAsync(XenClasses.Host, record.GetValueOrDefault("host")?.ToString() ?? "", cancellationToken);
        var sr = await database.GetArgumentAsync(XenClasses.SR, record.GetValueOrDefault("SR")?.ToString() ?? "", cancellationToken);
        var deviceConfig = StringMap(record.GetValueOrDefault("device_config"));
        if (deviceConfig.TryGetValue("SRmaster", out var master))
        {
            throw new XenApiException(ErrorCodes.ValueNotSupported, "SRmaster", master, "This key is for internal use only");
        }

        foreach (var pbdRef in sr.Get(XenApi.SR.PBDs))
        {
            if (await database.TryGetAsync(XenClasses.PBD, pbdRef, cancellationToken) is { } existing && existing.Get(XenApi.PBD.Host) == host.Ref)
            {
                throw new XenApiException(ErrorCodes.PbdExists, sr.Ref, host.Ref, existing.Ref);
            }
        }

        var tx = new PoolTransaction();
        var pbd = tx.Create(XenClasses.PBDSchema);
        pbd.Set(XenApi.PBD.Host, host.Ref);
        pbd.Set(XenApi.PBD.SR, sr.Ref);
        // Its passwords kept in secrets of its own, as xapi keeps them (device_config is every session's to read).
        pbd.Set(XenApi.PBD.DeviceConfig, await DeviceConfigSecrets.ForNewPbdAsync(database, tx, deviceConfig, cancellationToken));
        pbd.Set(XenApi.PBD.OtherConfig, StringMap(record.GetValueOrDefault("other_config")));
        pbd.Set(XenApi.PBD.CurrentlyAttached, false);
        await database.CommitAsync(tx, cancellationToken);
        return pbd.Ref;
    }

    private async Task<object?> DestroyAsync(string pbdRef, CancellationToken cancellationToken)
    {
        var pbd = await database.GetArgumentAsync(XenClasses.PBD, pbdRef, cancellationToken);
        if (pbd.Get(XenApi.PBD.CurrentlyAttached))
        {
            throw new XenApiException(ErrorCodes.OperationNotAllowed, "PBD is currently attached");
        }

        var tx = new PoolTransaction();
        tx.Delete(pbd);
        await DeviceConfigSecrets.DeleteAsync(database, tx, pbd.Get(XenApi.PBD.DeviceConfig), cancellationToken);
        await database.CommitAsync(tx, cancellationToken);
        return null;
    }

    private async Task<object?> PlugAsync(CallContext context, string pbdRef, CancellationToken cancellationToken)
    {
        var pbd = await database.GetArgumentAsync(XenClasses.PBD, pbdRef, cancellationToken);
        var sr = await database.GetAsync(XenClasses.SR, pbd.Get(XenApi.PBD.SR), cancellationToken);
        drivers.Get(sr.Get(XenApi.SR.Type)); // SR_UNKNOWN_DRIVER for a type no driver here knows
        if (!pbd.Get(XenApi.PBD.CurrentlyAttached) && await PluggedElsewhereAsync(database, sr, pbd, cancellationToken) is { } other)
        {
            // A local SR is one host's: plugged on a second, two hosts would write its volumes.
            throw new XenApiException(ErrorCodes.SrNotSharable, sr.Ref, other);
        }

        await OnHostAsync(context, HostOperationKinds.PbdPlug, pbd, sr, cancellationToken);
        return null;
    }

    /// <summary>For an SR that is not shared, the host of another of its PBDs that is plugged; null when none is (or the SR is shared).</summary>
    public static async Task<string?> PluggedElsewhereAsync(IPoolDatabase database, XenObject sr, XenObject pbd, CancellationToken cancellationToken)
    {
        if (sr.Get(XenApi.SR.Shared))
        {
            return null;
        }

        foreach (var otherRef in sr.Get(XenApi.SR.PBDs).Where(r => r != pbd.Ref))
        {
            if (await database.TryGetAsync(XenClasses.PBD, otherRef, cancellationToken) is { } other && other.Get(XenApi.PBD.CurrentlyAttached))
            {
                return other.Get(XenApi.PBD.Host);
            }
        }

        return null;
    }

    /// <summary>
    /// xapi's PBD.unplug: nothing to do when not plugged; refused while HA needs the SR (its statefile, or a protected
    /// VM's disks while the host takes part) or a VM running on the PBD's host has one of its VDIs attached.
    /// </summary>
    private async Task<object?> UnplugAsync(CallContext context, string pbdRef, CancellationToken cancellationToken)
    {
        var pbd = await database.GetArgumentAsync(XenClasses.PBD, pbdRef, cancellationToken);
        if (!pbd.Get(XenApi.PBD.CurrentlyAttached))
        {
            return null;
        }

        var sr = await database.GetAsync(XenClasses.SR, pbd.Get(XenApi.PBD.SR), cancellationToken);
        var host = await database.GetAsync(XenClasses.Host, pbd.Get(XenApi.PBD.Host), cancellationToken);
        await RequireNotNeededByHaAsync(sr, host, cancellationToken);
        var inUse = await VdisInUseAsync(database, sr.Ref, host.Ref, cancellationToken);
        if (inUse.Count > 0)
        {
            throw new XenApiException(ErrorCodes.VdiInUse, [.. inUse]);
        }

        await OnHostAsync(context, HostOperationKinds.PbdUnplug, pbd, sr, cancellationToken);
        return null;
    }

    private async Task RequireNotNeededByHaAsync(XenObject sr, XenObject host, CancellationToken cancellationToken)
    {
        if ((await database.GetAllAsync(XenClasses.Pool, cancellationToken)).SingleOrDefault() is not { } pool || !pool.Get(XenApi.Pool.HaEnabled))
        {
            return;
        }

        var vdis = sr.Get(XenApi.SR.VDIs).ToHashSet(StringComparer.Ordinal);
        if (host.Get(XenApi.Host.Enabled) && !pool.Get(XenApi.Pool.HaAllowOvercommit))
        {
            foreach (var vm in await database.GetAllAsync(XenClasses.VM, cancellationToken))
            {
                if (vm.Get(XenApi.VM.HaRestartPriority) != RestartPriority.Restart)
                {
                    continue;
                }

                foreach (var vbdRef in vm.Get(XenApi.VM.VBDs))
                {
                    if (await database.TryGetAsync(XenClasses.VBD, vbdRef, cancellationToken) is { } vbd && vdis.Contains(vbd.Get(XenApi.VBD.VDI)))
                    {
                        throw new XenApiException(ErrorCodes.HaConstraintViolationSrNotShared, sr.Ref);
                    }
                }
            }
        }

        if (pool.Get(XenApi.Pool.HaStatefiles).Any(vdis.Contains))
        {
            throw new XenApiException(ErrorCodes.HaIsEnabled);
        }
    }

    /// <summary>Runs the operation on the PBD's host (HOST_OFFLINE when it is not live), in line with the SR's other operations there.</summary>
    private async Task OnHostAsync(CallContext context, string kind, XenObject pbd, XenObject sr, CancellationToken cancellationToken)
    {
        var hostRef = pbd.Get(XenApi.PBD.Host);
        var host = await database.TryGetAsync(XenClasses.Host, hostRef, cancellationToken);
        if (host is null || !await placement.IsLiveAsync(host, cancellationToken))
        {
            throw new XenApiException(ErrorCodes.HostOffline, hostRef);
        }

        await operations.RunAsync(kind, hostRef, sr.Ref, new Dictionary<string, string> { ["pbd"] = pbd.Ref }, context, cancellationToken);
    }

    /// <summary>The SR's VDIs that VMs running on <paramref name="hostRef"/> have attached (xapi's PBD.unplug refuses then).</summary>
    public static async Task<IReadOnlyList<string>> VdisInUseAsync(IPoolDatabase database, string srRef, string hostRef, CancellationToken cancellationToken)
    {
        var inUse = new List<string>();
        foreach (var vm in await database.GetAllAsync(XenClasses.VM, cancellationToken))
        {
            if (vm.Get(XenApi.VM.ResidentOn) != hostRef)
            {
                continue;
            }

            foreach (var vbdRef in vm.Get(XenApi.VM.VBDs))
            {
                if (await database.TryGetAsync(XenClasses.VBD, vbdRef, cancellationToken) is { } vbd
                    && vbd.Get(XenApi.VBD.CurrentlyAttached) && !vbd.Get(XenApi.VBD.Empty)
                    && await database.TryGetAsync(XenClasses.VDI, vbd.Get(XenApi.VBD.VDI), cancellationToken) is { } vdi
                    && vdi.Get(XenApi.VDI.SR) == srRef && vdi.Get(XenApi.VDI.Type) != VdiType.Metadata && !inUse.Contains(vdi.Ref))
                {
                    inUse.Add(vdi.Ref);
                }
            }
        }

        return inUse;
    }

    internal static Dictionary<string, string> StringMap(object? value) =>
        (value as IDictionary<string, object?> ?? new Dictionary<string, object?>()).ToDictionary(kv => kv.Key, kv => kv.Value?.ToString() ?? "", StringComparer.Ordinal);
}
