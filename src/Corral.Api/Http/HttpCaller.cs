using System.Net.Http.Headers;
using System.Text;
using Corral.Api.Audit;
using Corral.Api.Sessions;
using Corral.Model;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Corral.Api.Http;

/// <summary>
/// Who calls one of xapi's HTTP handlers that acts on the pool (<c>/export</c>, <c>/import</c>), as xapi's
/// <c>assert_credentials_ok</c> decides it: the session the request names (query or cookie), or else HTTP Basic
/// credentials, logged in for the request alone (and out at its end); then the handler's RBAC permission
/// (<c>http/get_export</c>...). Each decision is audited as an HTTP action.
/// </summary>
internal sealed class HttpCaller : IAsyncDisposable
{
    private readonly SessionService _sessions;
    private readonly bool _ownsSession;

    private HttpCaller(SessionService sessions, string sessionRef, SessionAccess access, bool ownsSession)
    {
        _sessions = sessions;
        SessionRef = sessionRef;
        Access = access;
        _ownsSession = ownsSession;
    }

    public string SessionRef { get; }

    public SessionAccess Access { get; }

    /// <summary>
    /// The caller, or null once the answer is written: 401 without valid credentials (with the Basic challenge), 403
    /// RBAC_PERMISSION_DENIED without <paramref name="permission"/>.
    /// </summary>
    public static async Task<HttpCaller?> AuthenticateAsync(HttpContext context, string permission, CancellationToken cancellationToken)
    {
        var sessions = context.RequestServices.GetRequiredService<SessionService>();
        HttpCaller? caller = null;
        try
        {
            if (HttpSessionId.Of(context.Request) is { Length: > 0 } session)
            {
                caller = new HttpCaller(sessions, session, await sessions.ValidateAsync(session, cancellationToken), ownsSession: false);
            }
            else if (BasicCredentials(context.Request) is { } credentials)
            {
                var source = context.Connection.RemoteIpAddress?.ToString() ?? "";
                var login = await sessions.LoginAsync(credentials.User, credentials.Password, "HTTP Basic", source, cancellationToken);
                caller = new HttpCaller(sessions, login, await sessions.ValidateAsync(login, cancellationToken), ownsSession: true);
            }
        }
        catch (XenApiException ex)
        {
            await RefuseAsync(context, StatusCodes.Status401Unauthorized, string.Join(' ', ex.ErrorDescription), cancellationToken);
            return null;
        }

        if (caller is null)
        {
            await RefuseAsync(context, StatusCodes.Status401Unauthorized, "Unauthorised: a valid session_id or HTTP Basic credentials are required", cancellationToken);
            return null;
        }

        var audit = context.RequestServices.GetService<AuditLog>();
        var allowed = caller.Access.Allows(permission);
        if (audit is not null)
        {
            await audit.RecordHttpAsync(caller.SessionRef, caller.Access, allowed, allowed ? "OK" : "ERROR:" + ErrorCodes.RbacPermissionDenied, permission, [], cancellationToken);
        }

        if (!allowed)
        {
            await caller.DisposeAsync();
            await RefuseAsync(context, StatusCodes.Status403Forbidden, $"{ErrorCodes.RbacPermissionDenied} {permission}", cancellationToken);
            return null;
        }

        return caller;
    }

    /// <summary>The user and password of an HTTP Basic <c>Authorization</c> header, or null if there is none or it cannot be read.</summary>
    internal static (string User, string Password)? BasicCredentials(HttpRequest request)
    {
        if (!AuthenticationHeaderValue.TryParse(request.Headers.Authorization.ToString(), out var auth)
            || !auth.Scheme.Equals("Basic", StringComparison.OrdinalIgnoreCase) || auth.Parameter is not { } parameter)
        {
            return null;
        }

        try
        {
            var decoded = Encoding.UTF8.GetString(Convert.FromBase64String(parameter));
            var colon = decoded.IndexOf(':', StringComparison.Ordinal);
            return colon <= 0 ? null : (decoded[..colon], decoded[(colon + 1)..]);
        }
        catch (FormatException)
        {
            return null;
        }
    }

    private static async Task RefuseAsync(HttpContext context, int status, string text, CancellationToken cancellationToken)
    {
        context.Response.StatusCode = status;
        if (status == StatusCodes.Status401Unauthorized)
        {
            context.Response.Headers.WWWAuthenticate = "Basic realm=\"xapi\"";
        }

        await context.Response.WriteAsync(text + "\n", cancellationToken);
    }

    /// <summary>A session logged in for this request alone is logged out.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_ownsSession)
        {
            try
            {
                await _sessions.LogoutAsync(SessionRef, CancellationToken.None);
            }
            catch (XenApiException)
            {
                // Already gone: nothing to end.
            }
        }
    }
}
