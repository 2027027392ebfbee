using Microsoft.AspNetCore.Http;

namespace Corral.Api.Http;

/// <summary>The session an HTTP handler's request names, as xapi's handlers read it: <c>session_id</c> in the query, else the cookie.</summary>
internal static class HttpSessionId
{
    public static string? Of(HttpRequest request) =>
        request.Query.TryGetValue("session_id", out var q) && q.ToString().Length > 0 ? q.ToString() : request.Cookies["session_id"];
}
