using Corral.Api.Audit;
using Corral.Api.Sessions;
using Corral.Model;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Corral.Api.Http;

/// <summary>
/// <c>GET /audit_log?session_id=&lt;session&gt;[&amp;since=&lt;time&gt;]</c>, as xapi serves it: this host's audit log
/// (<see cref="AuditLog"/>), oldest first, from <c>since</c> on (ISO 8601 or the log's own timestamps), as plain
/// text. A valid session is needed, and xapi's permission <c>http/get_audit_log</c> (read-only and up). Each read is
/// itself audited, as an HTTP action.
/// </summary>
public static class AuditLogEndpoint
{
    public const string Path = "/audit_log";
    private const string Permission = "http/get_audit_log";

    public static IEndpointConventionBuilder MapAuditLog(this IEndpointRouteBuilder endpoints) => endpoints.MapGet(Path, HandleAsync);

    private static async Task HandleAsync(HttpContext context)
    {
        var ct = context.RequestAborted;
        var request = context.Request;
        var session = HttpSessionId.Of(request) ?? "";
        SessionAccess access;
        try
        {
            access = await context.RequestServices.GetRequiredService<SessionService>().ValidateAsync(session, ct);
        }
        catch (XenApiException ex)
        {
            context.Response.StatusCode = StatusCodes.Status401Unauthorized;
            await context.Response.WriteAsync($"{string.Join(' ', ex.ErrorDescription)}\n", ct);
            return;
        }

        var audit = context.RequestServices.GetRequiredService<AuditLog>();
        var since = request.Query.TryGetValue("since", out var s) ? s.ToString() : "";
        IReadOnlyList<AuditArgument> arguments = since.Length is > 0 and <= 255 ? [new AuditArgument("since", since, "", "")] : [];
        if (!access.Allows(Permission))
        {
            await audit.RecordHttpAsync(session, access, allowed: false, "ERROR:" + ErrorCodes.RbacPermissionDenied, Permission, arguments, ct);
            context.Response.StatusCode = StatusCodes.Status403Forbidden;
            await context.Response.WriteAsync($"{ErrorCodes.RbacPermissionDenied} {Permission}\n", ct);
            return;
        }

        if (since.Length > 255)
        {
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            await context.Response.WriteAsync("since: at most 255 characters\n", ct);
            return;
        }

        // Recorded before it is read, as xapi records it (an HTTP action; a slave's line goes to the master's log too).
        await audit.RecordHttpAsync(session, access, allowed: true, "OK", Permission, arguments, ct);
        context.Response.ContentType = "text/plain; charset=utf-8";
        await audit.WriteSinceAsync(since, context.Response.Body, ct);
    }
}
