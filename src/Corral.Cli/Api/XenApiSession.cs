using Corral.Api.Client;
using Corral.Model;

namespace Corral.Cli.Api;

/// <summary>A logged-in XenAPI session: every call goes with the session reference first, as XenAPI methods take it.</summary>
public sealed class XenApiSession(IXenApiClient client)
{
    public IXenApiClient Client => client;

    public string Reference { get; private set; } = "";

    public bool IsLoggedIn => Reference.Length > 0;

    /// <summary><c>session.login_with_password(uname, pwd, version, originator)</c>.</summary>
    public async Task LoginAsync(string user, string password, CancellationToken cancellationToken)
    {
        var result = await client.CallAsync("session.login_with_password", [user, password, "1.0", "xe"], cancellationToken);
        Reference = result as string ?? throw new XenApiException(ErrorCodes.InternalError, "session.login_with_password returned no session");
    }

    /// <summary><c>session.slave_local_login_with_password(uname, pwd)</c>: a session good on that host only.</summary>
    public async Task LocalLoginAsync(string user, string password, CancellationToken cancellationToken)
    {
        var result = await client.CallAsync("session.slave_local_login_with_password", [user, password], cancellationToken);
        Reference = result as string ?? throw new XenApiException(ErrorCodes.InternalError, "session.slave_local_login_with_password returned no session");
    }

    /// <summary><c>session.logout(session)</c>; a session already gone is not an error at the end of a command.</summary>
    public async Task LogoutAsync(CancellationToken cancellationToken)
    {
        if (!IsLoggedIn)
        {
            return;
        }

        var session = Reference;
        Reference = "";
        await client.CallAsync("session.logout", [session], cancellationToken);
    }

    /// <summary>Calls <paramref name="method"/> with the session, then <paramref name="args"/>.</summary>
    public Task<object?> CallAsync(string method, CancellationToken cancellationToken, params object?[] args) =>
        client.CallAsync(method, [Reference, .. args], cancellationToken);

    /// <summary>A call whose result is a reference or a string.</summary>
    public async Task<string> CallForStringAsync(string method, CancellationToken cancellationToken, params object?[] args) =>
        XenValue.AsString(await CallAsync(method, cancellationToken, args));
}
