using Corral.Api.Metrics;
using Corral.Api.Sessions;
using Corral.Model;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Corral.Api.Http;

/// <summary>
/// <c>GET /rrd_updates</c>: this host's performance data (its own with <c>host=true</c>, and its VMs') as xapi serves
/// it, rrdtool's xport document in XML or JSON. Authenticated as xapi's HTTP handlers are: a <c>session_id</c> (query or
/// cookie) of the pool, or HTTP Basic credentials that a login would take (a directory user's too); anything else is 401. No <c>start</c>, or one that is
/// not a number, is 400.
/// </summary>
public static class RrdUpdatesEndpoint
{
    private const string Realm = "xapi";

    public static IEndpointConventionBuilder MapRrdUpdates(this IEndpointRouteBuilder endpoints) =>
        endpoints.MapGet("/rrd_updates", HandleAsync);

    private static async Task HandleAsync(HttpContext context)
    {
        var ct = context.RequestAborted;
        var request = context.Request;
        if (!await AuthenticatedAsync(context, ct))
        {
            context.Response.StatusCode = StatusCodes.Status401Unauthorized;
            context.Response.Headers.WWWAuthenticate = $"Basic realm=\"{Realm}\"";
            await context.Response.WriteAsync("Unauthorised: a valid session_id is required\n", ct);
            return;
        }

        var query = RrdUpdatesQuery.Parse(name => request.Query.TryGetValue(name, out var v) ? v.ToString() : null,
            request.Headers.Accept.ToString(), out var error);
        if (query is null)
        {
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            await context.Response.WriteAsync($"get_rrd_updates: {error}\n", ct);
            return;
        }

        var history = context.RequestServices.GetRequiredService<PerformanceHistory>();
        var now = context.RequestServices.GetService<TimeProvider>()?.GetUtcNow().ToUnixTimeSeconds() ?? DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var table = XportTable.Build(history.Snapshot(), query, now);
        context.Response.ContentType = query.Json ? "application/json" : "text/xml";
        await context.Response.WriteAsync(query.Json ? table.ToJson() : table.ToXml(), ct);
    }

    private static async Task<bool> AuthenticatedAsync(HttpContext context, CancellationToken cancellationToken)
    {
        var request = context.Request;
        var session = HttpSessionId.Of(request);
        if (!string.IsNullOrEmpty(session))
        {
            try
            {
                await context.RequestServices.GetRequiredService<SessionService>().ValidateAsync(session, cancellationToken);
                return true;
            }
            catch (XenApiException)
            {
                return false;
            }
        }

        // As xapi's handlers: without a session, HTTP Basic credentials, checked by a login's rules (the pool
        // database's password hash, on any host, master or not; with external authentication on, the directory).
        if (HttpCaller.BasicCredentials(request) is { } credentials)
        {
            try
            {
                return await context.RequestServices.GetRequiredService<SessionService>().BasicCredentialsAllowAsync(credentials.User, credentials.Password,
                    context.Connection.RemoteIpAddress?.ToString() ?? "", "rrd_updates (HTTP Basic)", cancellationToken);
            }
            catch (XenApiException)
            {
                // Throttled (LoginThrottle): a 401 as for a wrong password.
                return false;
            }
        }

        return false;
    }
}
