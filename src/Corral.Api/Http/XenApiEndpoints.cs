using Corral.Api.Dispatch;
using Corral.Api.Methods;
using Corral.Api.Protocol;
using Corral.Api.Sessions;
using Corral.Model;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Corral.Api.Http;

/// <summary>
/// The XenAPI's two wire formats as xapi serves them: JSON-RPC on <c>POST /jsonrpc</c>, XML-RPC on <c>POST /</c> and
/// any other POST path xapi's longest-prefix routing sends there (<c>/RPC2</c>, where Python's XML-RPC client posts;
/// <c>/xmlrpc</c>, Xen Orchestra's fallback).
/// </summary>
public static class XenApiEndpoints
{
    public static WebApplication MapXenApi(this WebApplication endpoints)
    {
        endpoints.MapPost("/", HandleXmlRpcAsync);
        endpoints.MapPost("/jsonrpc", HandleJsonRpcAsync);
        // Any other POST that no route takes is XML-RPC. A middleware, not a catch-all route: a route matching every
        // path would answer a GET of the web console's files 405 (routing picks the method-mismatch endpoint, and
        // static files step aside for any routed endpoint).
        endpoints.Use(async (context, next) =>
        {
            if (context.GetEndpoint() is null && HttpMethods.IsPost(context.Request.Method))
            {
                await HandleXmlRpcAsync(context);
                return;
            }

            await next(context);
        });
        // A browser opening the host's address finds the web console there, as XenServer's welcome page leads on.
        endpoints.MapGet("/", (HttpContext context) => context.Request.Headers.Accept.ToString().Contains("text/html", StringComparison.OrdinalIgnoreCase)
            ? Results.Redirect("/console/")
            : Results.Text("Corral XenAPI endpoint: POST XML-RPC to / or JSON-RPC to /jsonrpc; the web console is at /console/\n"));
        return endpoints;
    }

    /// <summary>
    /// The call's turn among its client address's (<see cref="ClientCallLimiter"/>); null, after answering 503 with
    /// <c>Retry-After</c>, when that address has too many calls waiting.
    /// </summary>
    private static async Task<System.Threading.RateLimiting.RateLimitLease?> TakeTurnAsync(HttpContext context)
    {
        var limiter = context.RequestServices.GetRequiredService<ClientCallLimiter>();
        var lease = await limiter.AcquireAsync(context.Connection.RemoteIpAddress, context.RequestAborted);
        if (lease is null)
        {
            context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
            context.Response.Headers.RetryAfter = "1";
            context.Response.ContentType = "text/plain";
            await context.Response.WriteAsync("Too many calls from this address are waiting; try again shortly\n", context.RequestAborted);
        }

        return lease;
    }

    private static string Remote(HttpContext context) => context.Connection.RemoteIpAddress?.ToString() ?? "";

    /// <summary>
    /// The call's body, read up to <see cref="ApiOptions.MaxRpcRequestBytes"/>; null when it is larger, after answering
    /// 413 (as xapi refuses an RPC body over its limit) without parsing any of it.
    /// </summary>
    private static async Task<MemoryStream?> ReadBodyAsync(HttpContext context, ApiOptions options)
    {
        try
        {
            return await RpcBody.ReadAsync(context.Request.Body, context.Request.ContentLength, options.MaxRpcRequestBytes, context.RequestAborted);
        }
        catch (RpcBodyTooLargeException ex)
        {
            context.Response.StatusCode = StatusCodes.Status413PayloadTooLarge;
            context.Response.ContentType = "text/plain";
            context.Response.Headers.Connection = "close";
            await context.Response.WriteAsync($"Request body too large: a XenAPI call is at most {ex.Limit} bytes\n", context.RequestAborted);
            return null;
        }
    }

    private static async Task HandleXmlRpcAsync(HttpContext context)
    {
        using var turn = await TakeTurnAsync(context);
        if (turn is null)
        {
            return;
        }

        var dispatcher = context.RequestServices.GetRequiredService<ApiDispatcher>();
        var options = context.RequestServices.GetRequiredService<IOptions<ApiOptions>>().Value;
        var ct = context.RequestAborted;
        using var body = await ReadBodyAsync(context, options);
        if (body is null)
        {
            return;
        }

        string response;
        try
        {
            var request = XmlRpcCodec.ParseRequest(body, options.MaxRpcNesting);
            try
            {
                var result = await dispatcher.InvokeAsync(request.MethodName, request.Parameters, Remote(context), ct);
                response = request.MethodName == SystemMethods.ListMethods ? XmlRpcCodec.WriteRaw(result) : XmlRpcCodec.WriteSuccess(result);
            }
            catch (XenApiException ex)
            {
                response = XmlRpcCodec.WriteFailure(ex.ErrorDescription);
            }
        }
        catch (XenApiException ex)
        {
            response = XmlRpcCodec.WriteFailure(ex.ErrorDescription);
        }

        context.Response.ContentType = "text/xml";
        await context.Response.WriteAsync(response, ct);
    }

    private static async Task HandleJsonRpcAsync(HttpContext context)
    {
        using var turn = await TakeTurnAsync(context);
        if (turn is null)
        {
            return;
        }

        var dispatcher = context.RequestServices.GetRequiredService<ApiDispatcher>();
        var options = context.RequestServices.GetRequiredService<IOptions<ApiOptions>>().Value;
        var ct = context.RequestAborted;
        using var body = await ReadBodyAsync(context, options);
        if (body is null)
        {
            return;
        }

        string response;
        JsonRpcRequest? request = null;
        try
        {
            request = JsonRpcCodec.ParseRequest(body, options.MaxRpcNesting);
            var result = await dispatcher.InvokeAsync(request.MethodName, request.Parameters, Remote(context), ct);
            response = JsonRpcCodec.WriteSuccess(request, result);
        }
        catch (XenApiException ex)
        {
            response = JsonRpcCodec.WriteFailure(request, ex.ErrorDescription);
        }

        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(response, ct);
    }
}
