using System.Globalization;
using Corral.Api.AllowedOperations;
using Corral.Api.Dispatch;
using Corral.Api.Operations;
using Corral.Model;
using Corral.PoolDatabase;
using Corral.Storage;

namespace Corral.Api.Methods;

/// <summary>SR creation and scans, and VDI messages. Work on the volumes themselves runs on a host that has the SR attached.</summary>
public sealed class StorageMethods(IPoolDatabase database, HostOperationQueue operations, Placement placement, SrDrivers drivers) : IApiMethodProvider
{
    private static readonly FieldType Ref = FieldType.String;
    private static readonly FieldType StringMap = FieldType.StringMap;
    private static readonly FieldType Record = FieldType.Map(FieldType.String, new AnyType());

    public void Register(ApiRegistry registry)
    {
        registry.Add("SR.create", CreateSrAsync, ("host", Ref), ("device_config", StringMap), ("physical_size", FieldType.Int),
            ("name_label", FieldType.String), ("name_description", FieldType.String), ("type", FieldType.String),
            ("content_type", FieldType.String), ("shared", FieldType.Bool), ("sm_config", StringMap));
        registry.Add("SR.scan", async (ctx, a, ct) =>
        {
            var sr = await Get(XenClasses.SR, a[0], ct);
            var host = await AttachedHostAsync(sr, ct);
            await operations.RunAsync(HostOperationKinds.SrScan, host, sr.Ref, new Dictionary<string, string>(), ctx, ct);
            return null;
        }, ("sr", Ref));
        registry.Add("SR.get_supported_types", (_, _, _) => Task.FromResult<object?>(drivers.Types.Select(t => (object?)t).ToList()));

        registry.Add("VDI.create", CreateVdiAsync, ("args", Record));
        registry.Add("VDI.destroy", async (ctx, a, ct) =>
        {
            var vdi = await Get(XenClasses.VDI, a[0], ct);
            if (vdi.Get(XenApi.VDI.VBDs).Count > 0)
            {
                throw new XenApiException(ErrorCodes.VdiInUse, vdi.Ref, "destroy");
            }

            var host = await AttachedHostAsync(await Get(XenClasses.SR, vdi.Get(XenApi.VDI.SR), ct), ct);
            await operations.RunAsync(HostOperationKinds.VdiDestroy, host, vdi.Ref, new Dictionary<string, string>(), ctx, ct);
            return null;
        }, ("self", Ref));
        registry.Add("VDI.resize", async (ctx, a, ct) =>
        {
            var vdi = await Get(XenClasses.VDI, a[0], ct);
            await RequireNotInRunningVmAsync(vdi, ct);
            var host = await AttachedHostAsync(await Get(XenClasses.SR, vdi.Get(XenApi.VDI.SR), ct), ct);
            await operations.RunAsync(HostOperationKinds.VdiResize, host, vdi.Ref,
                new Dictionary<string, string> { ["size"] = ((long)a[1]!).ToString(CultureInfo.InvariantCulture) }, ctx, ct);
            return null;
        }, ("vdi", Ref), ("size", FieldType.Int));
        registry.Add("VDI.clone", async (ctx, a, ct) =>
        {
            var vdi = await Get(XenClasses.VDI, a[0], ct);
            return await CopyVdiAsync(database, operations, ctx, vdi, vdi.Get(XenApi.VDI.SR), ct);
        }, ("vdi", Ref), ("driver_params", StringMap));
        registry.Add("VDI.copy", async (ctx, a, ct) =>
        {
            var vdi = await Get(XenClasses.VDI, a[0], ct);
            // base_vdi only narrows what xapi copies into an existing into_vdi; a copy into a new VDI is whole anyway.
            if (!OpaqueRef.IsNull((string)a[3]!))
            {
                throw new XenApiException(ErrorCodes.ValueNotSupported, "into_vdi", (string)a[3]!, "Corral copies into a new VDI only");
            }

            var sr = await Get(XenClasses.SR, a[1], ct);
            return await CopyVdiAsync(database, operations, ctx, vdi, sr.Ref, ct);
        }, ("vdi", Ref), ("sr", Ref), ("base_vdi", Ref), ("into_vdi", Ref));

        // Names are the pool database's; the SR's metadata takes them at its next write (a scan, a VDI change, an unplug).
        foreach (var (className, field) in new[] { (XenClasses.SR, "name_label"), (XenClasses.SR, "name_description"), (XenClasses.VDI, "name_label"), (XenClasses.VDI, "name_description") })
        {
            registry.Implement($"{className}.set_{field}", async (_, a, ct) =>
            {
                await Get(className, a[0], ct);
                await database.UpdateAsync([(className, (string)a[0]!)], (objs, tx) =>
                {
                    var o = objs[0].Clone();
                    o[field] = a[1];
                    tx.Update(o);
                }, ct);
                return null;
            });
        }
    }

    /// <summary>The SR rules' error for <paramref name="op"/> on the SR as it is now, if any.</summary>
    private async Task AssertSrAsync(XenObject sr, StorageOperations op, CancellationToken cancellationToken)
    {
        var facts = await OperationFactsLoader.ForSrAsync(database, drivers, sr, cancellationToken);
        if (SrOperationRules.Check(facts.Sr(sr), op) is { } error)
        {
            throw error.ToException();
        }
    }

    private async Task<XenObject> Get(string className, object? reference, CancellationToken cancellationToken)
    {
        var r = reference as string ?? "";
        if (!OpaqueRef.IsWellFormed(r))
        {
            throw XenApiException.HandleInvalid(className, r);
        }

        return await database.GetAsync(className, r, cancellationToken);
    }

    /// <summary>A live host with the SR plugged, preferring the one this call arrived on is not needed: any will do.</summary>
    private async Task<string> AttachedHostAsync(XenObject sr, CancellationToken cancellationToken)
    {
        foreach (var pbdRef in sr.Get(XenApi.SR.PBDs))
        {
            var pbd = await database.TryGetAsync(XenClasses.PBD, pbdRef, cancellationToken);
            if (pbd is null || !pbd.Get(XenApi.PBD.CurrentlyAttached))
            {
                continue;
            }

            var host = await database.TryGetAsync(XenClasses.Host, pbd.Get(XenApi.PBD.Host), cancellationToken);
            if (host is not null && await placement.IsLiveAsync(host, cancellationToken))
            {
                return host.Ref;
            }
        }

        throw new XenApiException(ErrorCodes.SrHasNoPbds, sr.Ref);
    }

    private async Task<object?> CreateSrAsync(CallContext context, object?[] a, CancellationToken cancellationToken)
    {
        var host = await Get(XenClasses.Host, a[0], cancellationToken);
        var deviceConfig = ((Dictionary<string, object?>)a[1]!).ToDictionary(kv => kv.Key, kv => kv.Value?.ToString() ?? "");
        var type = (string)a[5]!;
        var driver = drivers.Get(type);
        driver.CheckDeviceConfig(await DeviceConfigSecrets.ResolveAsync(database, deviceConfig, cancellationToken));

        var shared = (bool)a[7]!;
        var contentType = string.IsNullOrEmpty((string)a[6]!) ? driver.DefaultContentType : (string)a[6]!;
        var tx = new PoolTransaction();
        var sr = tx.Create(XenClasses.SRSchema);
        sr.Set(XenApi.SR.NameLabel, (string)a[3]!);
        sr.Set(XenApi.SR.NameDescription, (string)a[4]!);
        sr.Set(XenApi.SR.Type, driver.Type);
        sr.Set(XenApi.SR.ContentType, contentType);
        sr.Set(XenApi.SR.Shared, shared);
        sr.Set(XenApi.SR.SmConfig, XenApi.SR.SmConfig.Read(a[8]));
        sr.Set(XenApi.SR.PhysicalSize, (long)a[2]!);
        // A shared SR is plugged on every host, as a pool-wide NFS SR is; a local one only on its host.
        var hosts = shared ? await database.GetAllAsync(XenClasses.Host, cancellationToken) : [host];
        foreach (var h in hosts)
        {
            var pbd = tx.Create(XenClasses.PBDSchema);
            pbd.Set(XenApi.PBD.Host, h.Ref);
            pbd.Set(XenApi.PBD.SR, sr.Ref);
            // Each PBD's passwords in secrets of its own, as xapi keeps them.
            pbd.Set(XenApi.PBD.DeviceConfig, await DeviceConfigSecrets.ForNewPbdAsync(database, tx, deviceConfig, cancellationToken));
            pbd.Set(XenApi.PBD.CurrentlyAttached, false);
        }

        await database.CommitAsync(tx, cancellationToken);
        try
        {
            // Every host plugs its PBD; the SR is usable once the creating host has it.
            foreach (var h in hosts)
            {
                if (h.Ref == host.Ref || await placement.IsLiveAsync(h, cancellationToken))
                {
                    await operations.RunAsync(HostOperationKinds.SrAttach, h.Ref, sr.Ref,
                        new Dictionary<string, string> { ["create"] = "true" }, context, cancellationToken);
                }
            }
        }
        catch (XenApiException)
        {
            await ForgetSrAsync(sr.Ref, cancellationToken);
            throw;
        }

        return sr.Ref;
    }

    private async Task<object?> ForgetSrAsync(object? srRef, CancellationToken cancellationToken)
    {
        await SrRecordMethods.DeleteRecordsAsync(database, await Get(XenClasses.SR, srRef, cancellationToken), cancellationToken);
        return null;
    }

    private async Task<object?> CreateVdiAsync(CallContext context, object?[] a, CancellationToken cancellationToken)
    {
        var record = (Dictionary<string, object?>)a[0]!;
        var sr = await Get(XenClasses.SR, record.GetValueOrDefault("SR"), cancellationToken);
        if (!drivers.Get(sr.Get(XenApi.SR.Type)).SupportsVdiCreate)
        {
            throw new XenApiException(ErrorCodes.SrOperationNotSupported, sr.Ref);
        }

        long size;
        try
        {
            size = (long)FieldType.Int.Coerce(record.GetValueOrDefault("virtual_size"))!;
        }
        catch (FormatException)
        {
            throw new XenApiException(ErrorCodes.FieldTypeError, "virtual_size");
        }

        if (size <= 0)
        {
            throw new XenApiException(ErrorCodes.InvalidValue, "virtual_size", size.ToString(CultureInfo.InvariantCulture));
        }

        var host = await AttachedHostAsync(sr, cancellationToken);
        var arguments = new Dictionary<string, string>
        {
            ["size"] = size.ToString(CultureInfo.InvariantCulture),
            ["name_label"] = record.GetValueOrDefault("name_label")?.ToString() ?? "",
            ["name_description"] = record.GetValueOrDefault("name_description")?.ToString() ?? "",
            ["type"] = record.GetValueOrDefault("type")?.ToString() is { Length: > 0 } t ? (string)XenEnumTypes.VdiType.Coerce(t)! : "user",
            ["sharable"] = (record.GetValueOrDefault("sharable")?.ToString() ?? "false").ToLowerInvariant(),
            ["read_only"] = (record.GetValueOrDefault("read_only")?.ToString() ?? "false").ToLowerInvariant(),
        };
        var vdiRef = (string)(await operations.RunAsync(HostOperationKinds.VdiCreate, host, sr.Ref, arguments, context, cancellationToken))!;
        await KeepCreateMapsAsync(vdiRef, record, cancellationToken);
        return vdiRef;
    }

    /// <summary>The record's other_config, xenstore_data, sm_config (over the SR driver's) and tags, as xapi's VDI.create keeps them.</summary>
    private async Task KeepCreateMapsAsync(string vdiRef, Dictionary<string, object?> record, CancellationToken cancellationToken)
    {
        static Dictionary<string, string>? MapOf(object? value) =>
            value is Dictionary<string, object?> { Count: > 0 } map ? map.ToDictionary(kv => kv.Key, kv => kv.Value?.ToString() ?? "", StringComparer.Ordinal) : null;
        var (other, xenstore, sm) = (MapOf(record.GetValueOrDefault("other_config")), MapOf(record.GetValueOrDefault("xenstore_data")), MapOf(record.GetValueOrDefault("sm_config")));
        var tags = record.GetValueOrDefault("tags") is List<object?> { Count: > 0 } list ? list.Select(t => t?.ToString() ?? "").ToList() : null;
        if (other is null && xenstore is null && sm is null && tags is null)
        {
            return;
        }

        await database.UpdateAsync([(XenClasses.VDI, vdiRef)], (objs, tx) =>
        {
            var vdi = objs[0].Clone();
            if (other is not null)
            {
                vdi.Set(XenApi.VDI.OtherConfig, other);
            }

            if (xenstore is not null)
            {
                vdi.Set(XenApi.VDI.XenstoreData, xenstore);
            }

            if (sm is not null)
            {
                vdi.Set(XenApi.VDI.SmConfig, new Dictionary<string, string>(vdi.Get(XenApi.VDI.SmConfig).Concat(sm).GroupBy(kv => kv.Key).Select(g => g.Last())
                    .ToDictionary(kv => kv.Key, kv => kv.Value), StringComparer.Ordinal));
            }

            if (tags is not null)
            {
                vdi.Set(XenApi.VDI.Tags, tags);
            }

            tx.Update(vdi);
        }, cancellationToken);
    }

    /// <summary>A full copy of a volume into an SR, made by a host that has the target SR attached.</summary>
    internal static async Task<string> CopyVdiAsync(IPoolDatabase database, HostOperationQueue operations, CallContext context, XenObject vdi, string targetSr,
        CancellationToken cancellationToken)
    {
        var sr = await database.GetAsync(XenClasses.SR, targetSr, cancellationToken);
        string? host = null;
        foreach (var pbdRef in sr.Get(XenApi.SR.PBDs))
        {
            var pbd = await database.TryGetAsync(XenClasses.PBD, pbdRef, cancellationToken);
            if (pbd is not null && pbd.Get(XenApi.PBD.CurrentlyAttached) && await database.Leases.GetValueAsync(PoolKeys.LiveKey(
                    (await database.GetAsync(XenClasses.Host, pbd.Get(XenApi.PBD.Host), cancellationToken)).Get(XenApi.Host.Metrics)), cancellationToken) is not null)
            {
                host = pbd.Get(XenApi.PBD.Host);
                break;
            }
        }

        if (host is null)
        {
            throw new XenApiException(ErrorCodes.SrHasNoPbds, sr.Ref);
        }

        return await operations.RunAsync(HostOperationKinds.VdiCopy, host, vdi.Ref, new Dictionary<string, string> { ["sr"] = targetSr }, context, cancellationToken);
    }

    private async Task RequireNotInRunningVmAsync(XenObject vdi, CancellationToken cancellationToken)
    {
        foreach (var vbdRef in vdi.Get(XenApi.VDI.VBDs))
        {
            var vbd = await database.GetAsync(XenClasses.VBD, vbdRef, cancellationToken);
            if (vbd.Get(XenApi.VBD.CurrentlyAttached))
            {
                throw new XenApiException(ErrorCodes.VdiInUse, vdi.Ref, "resize");
            }
        }
    }
}

/// <summary>A parameter type that takes any value as it comes (struct members of a record argument).</summary>
internal sealed record AnyType : FieldType
{
    public override object? DefaultValue() => null;

    public override object? Coerce(object? value) => value;

    public override System.Text.Json.Nodes.JsonNode? ToJson(object? value) => throw new NotSupportedException();

    public override object? FromJson(System.Text.Json.Nodes.JsonNode? node) => throw new NotSupportedException();
}
