using System.Text.Json;
using Corral.Api.Dispatch;
using Corral.Api.Operations;
using Corral.Model;
using Corral.PoolDatabase;
using Corral.Storage;

namespace Corral.Api.Methods;

/// <summary>
/// An SR's records apart from its storage, as xapi handles them: SR.probe and SR.probe_ext (which SRs a location
/// holds, asked of one host), SR.introduce (the record of an SR that exists on storage; PBD.create and PBD.plug then
/// find its VDIs), SR.forget (the records go, the data stays) and SR.destroy (the SR goes from its storage too).
/// </summary>
public sealed class SrRecordMethods(IPoolDatabase database, Placement placement, HostOperationQueue operations, SrDrivers drivers) : IApiMethodProvider
{
    public void Register(ApiRegistry registry)
    {
        registry.Implement("SR.probe", async (ctx, a, ct) =>
            SrProbeXml.Format(await ProbeAsync(ctx, (string)a[0]!, PbdMethods.StringMap(a[1]), (string)a[2]!, ct)));
        registry.Implement("SR.probe_ext", async (ctx, a, ct) =>
        {
            var deviceConfig = PbdMethods.StringMap(a[1]);
            return ProbeResults(deviceConfig, await ProbeAsync(ctx, (string)a[0]!, deviceConfig, (string)a[2]!, ct));
        });
        registry.Implement("SR.introduce", (_, a, ct) => IntroduceAsync(a, ct));
        registry.Implement("SR.forget", async (_, a, ct) =>
        {
            var sr = await database.GetArgumentAsync(XenClasses.SR, (string)a[0]!, ct);
            await RequireAllUnpluggedAsync(sr, ct);
            await DeleteRecordsAsync(database, sr, ct);
            return null;
        });
        registry.Implement("SR.destroy", (ctx, a, ct) => DestroyAsync(ctx, (string)a[0]!, ct));
    }

    /// <summary>Asks <paramref name="hostRef"/>'s driver of <paramref name="type"/> which SRs the location holds.</summary>
    private async Task<IReadOnlyList<ProbedSr>> ProbeAsync(CallContext context, string hostRef, Dictionary<string, string> deviceConfig, string type,
        CancellationToken cancellationToken)
    {
        var host = await database.GetArgumentAsync(XenClasses.Host, hostRef, cancellationToken);
        drivers.Get(type);
        if (!await placement.IsLiveAsync(host, cancellationToken))
        {
            throw new XenApiException(ErrorCodes.HostOffline, host.Ref);
        }

        // Probes have no object: they run one at a time on the host, as xapi serialises them.
        var result = await operations.RunAsync(HostOperationKinds.SrProbe, host.Ref, OpaqueRef.Null, new Dictionary<string, string>
        {
            ["type"] = type.ToLowerInvariant(),
            // The passwords' values, given plain or as secrets (*password_secret), for the host's driver.
            ["device_config"] = JsonSerializer.Serialize(await DeviceConfigSecrets.ResolveAsync(database, deviceConfig, cancellationToken)),
        }, context, cancellationToken);
        return JsonSerializer.Deserialize<List<ProbedSr>>(result) ?? [];
    }

    /// <summary>
    /// SR.probe_ext's records: one per SR found (its <c>sr_stat</c>), or, where the location holds none yet, one without
    /// an SR saying the configuration is complete: an SR can be created there.
    /// </summary>
    public static List<object?> ProbeResults(IReadOnlyDictionary<string, string> deviceConfig, IReadOnlyList<ProbedSr> found)
    {
        Dictionary<string, object?> Result(List<object?> sr) => new()
        {
            ["configuration"] = deviceConfig.ToDictionary(kv => kv.Key, kv => (object?)kv.Value),
            ["complete"] = true,
            ["sr"] = sr,
            ["extra_info"] = new Dictionary<string, object?>(),
        };

        if (found.Count == 0)
        {
            return [Result([])];
        }

        return found.Select(sr => (object?)Result(
        [
            new Dictionary<string, object?>
            {
                ["uuid"] = new List<object?> { sr.Uuid },
                ["name_label"] = sr.NameLabel,
                ["name_description"] = sr.NameDescription,
                ["free_space"] = sr.FreeSpace,
                ["total_space"] = sr.TotalSpace,
                ["clustered"] = false,
                ["health"] = "healthy",
            },
        ])).ToList();
    }

    /// <summary>xapi's SR.introduce: the SR's record only (no PBDs, sizes unknown until a PBD is plugged and scans it).</summary>
    private async Task<object?> IntroduceAsync(object?[] a, CancellationToken cancellationToken)
    {
        var uuid = (string)a[0]! is { Length: > 0 } given ? given.ToLowerInvariant() : OpaqueRef.NewUuid();
        if (!OpaqueRef.IsUuid(uuid))
        {
            throw new XenApiException(ErrorCodes.InvalidValue, "uuid", uuid);
        }

        if (await database.FindByUuidAsync(XenClasses.SR, uuid, cancellationToken) is not null)
        {
            throw new XenApiException(ErrorCodes.SrUuidExists, uuid);
        }

        var tx = new PoolTransaction();
        var sr = tx.Create(XenClasses.SRSchema);
        sr.Set(XenApi.SR.Uuid, uuid);
        sr.Set(XenApi.SR.NameLabel, (string)a[1]!);
        sr.Set(XenApi.SR.NameDescription, (string)a[2]!);
        sr.Set(XenApi.SR.Type, ((string)a[3]!).ToLowerInvariant());
        sr.Set(XenApi.SR.ContentType, (string)a[4]!);
        sr.Set(XenApi.SR.Shared, (bool)a[5]!);
        sr.Set(XenApi.SR.SmConfig, XenApi.SR.SmConfig.Read(a[6]));
        sr.Set(XenApi.SR.PhysicalSize, -1L);
        sr.Set(XenApi.SR.PhysicalUtilisation, -1L);
        sr.Set(XenApi.SR.VirtualAllocation, 0L);
        try
        {
            await database.CommitAsync(tx, cancellationToken);
        }
        catch (ConcurrentUpdateException)
        {
            throw new XenApiException(ErrorCodes.SrUuidExists, uuid);
        }

        return sr.Ref;
    }

    /// <summary>
    /// xapi's SR.destroy: every PBD unplugged first, no VDI left; a host with a PBD for the SR removes it from its storage,
    /// then the records go.
    /// </summary>
    private async Task<object?> DestroyAsync(CallContext context, string srRef, CancellationToken cancellationToken)
    {
        var sr = await database.GetArgumentAsync(XenClasses.SR, srRef, cancellationToken);
        await RequireAllUnpluggedAsync(sr, cancellationToken);
        if (sr.Get(XenApi.SR.OtherConfig).GetValueOrDefault("indestructible") == "true")
        {
            throw new XenApiException(ErrorCodes.SrIndestructible, sr.Ref);
        }

        if (sr.Get(XenApi.SR.VDIs).Count > 0)
        {
            throw new XenApiException(ErrorCodes.SrNotEmpty);
        }

        string? offline = null;
        foreach (var pbdRef in sr.Get(XenApi.SR.PBDs))
        {
            if (await database.TryGetAsync(XenClasses.PBD, pbdRef, cancellationToken) is not { } pbd)
            {
                continue;
            }

            var host = await database.TryGetAsync(XenClasses.Host, pbd.Get(XenApi.PBD.Host), cancellationToken);
            if (host is null || !await placement.IsLiveAsync(host, cancellationToken))
            {
                offline ??= pbd.Get(XenApi.PBD.Host);
                continue;
            }

            await operations.RunAsync(HostOperationKinds.SrDestroy, host.Ref, sr.Ref, new Dictionary<string, string>(), context, cancellationToken);
            await DeleteRecordsAsync(database, sr, cancellationToken);
            return null;
        }

        throw offline is null ? new XenApiException(ErrorCodes.SrHasNoPbds, sr.Ref) : new XenApiException(ErrorCodes.HostOffline, offline);
    }

    private async Task RequireAllUnpluggedAsync(XenObject sr, CancellationToken cancellationToken)
    {
        foreach (var pbdRef in sr.Get(XenApi.SR.PBDs))
        {
            if (await database.TryGetAsync(XenClasses.PBD, pbdRef, cancellationToken) is { } pbd && pbd.Get(XenApi.PBD.CurrentlyAttached))
            {
                throw new XenApiException(ErrorCodes.SrHasPbd, sr.Ref);
            }
        }
    }

    /// <summary>The SR's records, its PBDs' and its VDIs', in one transaction; what is on the storage stays.</summary>
    internal static async Task DeleteRecordsAsync(IPoolDatabase database, XenObject sr, CancellationToken cancellationToken)
    {
        var tx = new PoolTransaction();
        tx.Delete(sr);
        foreach (var (className, field) in new[] { (XenClasses.PBD, "PBDs"), (XenClasses.VDI, "VDIs") })
        {
            foreach (var reference in sr.GetSet(field))
            {
                if (await database.TryGetAsync(className, reference, cancellationToken) is { } record)
                {
                    tx.Delete(record);
                    if (className == XenClasses.PBD)
                    {
                        await DeviceConfigSecrets.DeleteAsync(database, tx, record.Get(XenApi.PBD.DeviceConfig), cancellationToken);
                    }
                }
            }
        }

        await database.CommitAsync(tx, cancellationToken);
    }
}
