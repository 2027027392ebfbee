using Corral.Api.AllowedOperations;
using Corral.Api.Dispatch;
using Corral.Api.Operations;
using Corral.Api.Sessions;
using Corral.Api.Xva;
using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Corral.Api.Http;

/// <summary>
/// xapi's VM export and import handlers. <c>GET /export?uuid=|ref=[&amp;use_compression=true|gzip|zstd]</c> streams
/// an XVA of a halted VM or a snapshot, the VM marked <c>export</c> meanwhile (a running VM is VM_BAD_POWER_STATE, as
/// xapi's operation check says). <c>PUT /import?sr_id=|sr_uuid=[&amp;restore=true][&amp;force=true]</c> reads one
/// (plain, gzip or zstd) into the SR (the pool's default SR without one); the task's result is the new VMs. Both
/// authenticate as xapi's handlers do (session, or HTTP Basic), need <c>http/get_export</c> or <c>http/put_import</c>,
/// run under the caller's <c>task_id</c> (or a task of their own, named in the <c>task-id</c> header), and send the
/// client to a host that sees the SRs when this one does not (HTTP 302). A failure fails the task; before the archive
/// starts it is answered HTTP 500 with the XenAPI error.
/// </summary>
public static class XvaEndpoints
{
    public const string ExportPath = "/export";
    public const string ImportPath = "/import";

    public static IEndpointRouteBuilder MapXva(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet(ExportPath, ExportAsync);
        endpoints.MapPut(ImportPath, ImportAsync);
        return endpoints;
    }

    private static async Task ExportAsync(HttpContext context)
    {
        var ct = context.RequestAborted;
        await using var caller = await HttpCaller.AuthenticateAsync(context, "http/get_export", ct);
        if (caller is null)
        {
            return;
        }

        var services = context.RequestServices;
        var database = services.GetRequiredService<IPoolDatabase>();
        var exporter = services.GetRequiredService<XvaExporter>();
        var task = await XvaTask.StartAsync(context, "VM.export", ct);
        try
        {
            var plan = await exporter.PlanAsync(await VmOfAsync(context.Request, database, ct), ct);
            if (await RedirectAsync(context, plan.SrRefs, ct))
            {
                await task.AbandonAsync();
                return;
            }

            var call = new CallContext(caller.SessionRef, context.Connection.RemoteIpAddress?.ToString() ?? "", "VM.export") { TaskRef = task.Ref };
            await using var mark = await services.GetRequiredService<OperationMarks>().MarkVmAsync(call, plan.Vm.Ref, VmOperations.Export, ct);
            var compression = XvaCompressions.Parse(context.Request.Query["use_compression"].ToString());
            context.Response.StatusCode = StatusCodes.Status200OK;
            context.Response.ContentType = "application/octet-stream";
            context.Response.Headers.ContentDisposition = "attachment; filename=\"export.xva\"";
            await context.Response.StartAsync(ct);
            await exporter.WriteAsync(plan, context.Response.Body, compression, task.Progress, ct);
            await task.SucceedAsync(null);
            Logger(context).LogInformation(XvaEvents.Exported, "Exported VM {Vm} ({Name})", plan.Vm.Uuid, plan.Vm.Get(XenApi.VM.NameLabel));
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // The client went away.
            await task.FailAsync(context, new XenApiException(ErrorCodes.TaskCancelled, task.Ref));
        }
        catch (Exception ex)
        {
            Logger(context).LogWarning(XvaEvents.ExportFailed, ex, "VM export failed");
            await task.FailAsync(context, ex);
        }
    }

    private static async Task ImportAsync(HttpContext context)
    {
        var ct = context.RequestAborted;
        await using var caller = await HttpCaller.AuthenticateAsync(context, "http/put_import", ct);
        if (caller is null)
        {
            return;
        }

        var services = context.RequestServices;
        var database = services.GetRequiredService<IPoolDatabase>();
        var query = context.Request.Query;
        var task = await XvaTask.StartAsync(context, "VM.import", ct);
        try
        {
            var sr = await SrOfAsync(context.Request, database, ct);
            if (sr.Get(XenApi.SR.ContentType) == "iso")
            {
                throw new XenApiException(ErrorCodes.SrOperationNotSupported, sr.Ref);
            }

            if (await RedirectAsync(context, [sr.Ref], ct))
            {
                await task.AbandonAsync();
                return;
            }

            // An archive is as large as the VM's disks: no request-size limit here.
            if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
            {
                limit.MaxRequestBodySize = null;
            }

            var options = new XvaImportOptions(sr.Ref, query["restore"] == "true", query["force"] == "true", task.Ref);
            IReadOnlyList<string> vms;
            await using (var reader = await XvaReader.OpenAsync(context.Request.Body, ct))
            {
                vms = await services.GetRequiredService<XvaImporter>().ImportAsync(reader, options, task.Progress, ct);
            }

            await RescanAsync(context, caller.SessionRef, sr.Ref, ct);
            await task.SucceedAsync(vms);
            context.Response.StatusCode = StatusCodes.Status200OK;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            await task.FailAsync(context, new XenApiException(ErrorCodes.TaskCancelled, task.Ref));
        }
        catch (Exception ex)
        {
            await task.FailAsync(context, ex);
        }
    }

    /// <summary>The VM of <c>ref=</c> (xapi's first choice) or <c>uuid=</c>.</summary>
    private static async Task<string> VmOfAsync(HttpRequest request, IPoolDatabase database, CancellationToken cancellationToken)
    {
        if (request.Query["ref"].ToString() is { Length: > 0 } reference)
        {
            return (await database.GetArgumentAsync(XenClasses.VM, reference, cancellationToken)).Ref;
        }

        var uuid = request.Query["uuid"].ToString();
        return (await database.FindByUuidAsync(XenClasses.VM, uuid, cancellationToken) ?? throw XenApiException.UuidInvalid(XenClasses.VM, uuid)).Ref;
    }

    /// <summary>The SR of <c>sr_id=</c> or <c>sr_uuid=</c>, else the pool's default SR (DEFAULT_SR_NOT_FOUND without one).</summary>
    private static async Task<XenObject> SrOfAsync(HttpRequest request, IPoolDatabase database, CancellationToken cancellationToken)
    {
        if (request.Query["sr_id"].ToString() is { Length: > 0 } reference)
        {
            return await database.GetArgumentAsync(XenClasses.SR, reference, cancellationToken);
        }

        if (request.Query["sr_uuid"].ToString() is { Length: > 0 } uuid)
        {
            return await database.FindByUuidAsync(XenClasses.SR, uuid, cancellationToken) ?? throw XenApiException.UuidInvalid(XenClasses.SR, uuid);
        }

        var pools = await database.GetAllAsync(XenClasses.Pool, cancellationToken);
        var defaultSr = pools.Count > 0 ? pools[0].Get(XenApi.Pool.DefaultSR) : OpaqueRef.Null;
        return await database.TryGetAsync(XenClasses.SR, defaultSr, cancellationToken) ?? throw new XenApiException(ErrorCodes.DefaultSrNotFound, defaultSr);
    }

    /// <summary>
    /// When this host does not have every SR attached: HTTP 302 to one that has (same path and query, as xapi
    /// redirects), or SR_HAS_NO_PBDS when no host has.
    /// </summary>
    private static async Task<bool> RedirectAsync(HttpContext context, IReadOnlyCollection<string> srRefs, CancellationToken cancellationToken)
    {
        var database = context.RequestServices.GetRequiredService<IPoolDatabase>();
        var hostRef = context.RequestServices.GetRequiredService<IOptions<ApiOptions>>().Value.HostRef;
        var missing = new List<string>();
        foreach (var sr in srRefs)
        {
            if (await SrDirectories.OnHostAsync(database, sr, hostRef, cancellationToken) is null)
            {
                missing.Add(sr);
            }
        }

        if (missing.Count == 0)
        {
            return false;
        }

        var host = await SrDirectories.HostSeeingAllAsync(database, srRefs, hostRef, cancellationToken)
                   ?? throw new XenApiException(ErrorCodes.SrHasNoPbds, missing[0]);
        var request = context.Request;
        var address = host.Get(XenApi.Host.Address);
        var authority = address.Contains(':', StringComparison.Ordinal) ? $"[{address}]" : address;
        var location = $"{request.Scheme}://{authority}{(request.Host.Port is { } port ? $":{port}" : "")}{request.Path}{request.QueryString}";
        Logger(context).LogInformation(XvaEvents.Redirected, "{Path}: the SRs are on host {Host}, redirecting there", request.Path, host.Get(XenApi.Host.NameLabel));
        context.Response.Redirect(location);
        return true;
    }

    /// <summary>The SR scanned on this host after an import, so that its usage and its metadata name the new VDIs; a failure is only logged.</summary>
    private static async Task RescanAsync(HttpContext context, string sessionRef, string srRef, CancellationToken cancellationToken)
    {
        try
        {
            var hostRef = context.RequestServices.GetRequiredService<IOptions<ApiOptions>>().Value.HostRef;
            var call = new CallContext(sessionRef, context.Connection.RemoteIpAddress?.ToString() ?? "", "SR.scan");
            await context.RequestServices.GetRequiredService<HostOperationQueue>().RunAsync(HostOperationKinds.SrScan, hostRef, srRef, new Dictionary<string, string>(), call, cancellationToken);
        }
        catch (XenApiException ex)
        {
            Logger(context).LogWarning(XvaEvents.Imported, ex, "The SR {Sr} could not be scanned after an import", srRef);
        }
    }

    private static ILogger Logger(HttpContext context) => context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(XvaEndpoints).FullName!);
}
