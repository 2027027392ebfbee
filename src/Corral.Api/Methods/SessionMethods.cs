using Corral.Api.Dispatch;
using Corral.Api.Sessions;
using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.Extensions.Options;

namespace Corral.Api.Methods;

public sealed class SessionMethods(SessionService sessions, IPoolDatabase database, IOptions<ApiOptions> options) : IApiMethodProvider
{
    public void Register(ApiRegistry registry)
    {
        // uname, pwd, then version and originator, which most clients leave off (the datamodel gives them defaults).
        registry.Implement("session.login_with_password",
            async (_, a, ct) => await sessions.LoginAsync((string)a[0]!, (string)a[1]!, (string)a[3]!, ct).ConfigureAwait(false));
        registry.Add("session.logout", async (ctx, _, ct) =>
        {
            await sessions.LogoutAsync(ctx.SessionRef, ct).ConfigureAwait(false);
            return null;
        });
        registry.Add("session.get_this_host", async (_, a, ct) =>
            (await database.GetAsync(XenClasses.Session, (string)a[0]!, ct).ConfigureAwait(false)).GetString("this_host"),
            ("self", FieldType.String));
        registry.Add("session.get_this_user", (_, _, _) => Task.FromResult<object?>(OpaqueRef.Null), ("self", FieldType.String));
        registry.Add("session.get_pool", async (_, a, ct) =>
            (await database.GetAsync(XenClasses.Session, (string)a[0]!, ct).ConfigureAwait(false)).GetBool("pool"),
            ("self", FieldType.String));
        registry.Add("session.change_password", async (ctx, a, ct) =>
        {
            var user = await sessions.GetUserAsync(ctx.SessionRef, ct).ConfigureAwait(false);
            var stored = await database.Leases.GetValueAsync(SessionService.PasswordKey(user), ct).ConfigureAwait(false);
            if (stored is null || !PasswordHasher.Verify((string)a[0]!, stored))
            {
                throw new XenApiException(ErrorCodes.SessionAuthenticationFailed, user, "Authentication failure");
            }

            await sessions.SetPasswordAsync(user, (string)a[1]!, ct).ConfigureAwait(false);
            return null;
        }, ("old_pwd", FieldType.String), ("new_pwd", FieldType.String));
        _ = options;
    }
}
