using Corral.Api.Dispatch;
using Corral.Api.Sessions;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Api.Methods;

/// <summary>
/// <c>session</c>'s own messages: logins and logouts (also of every session of a subject, and of a host-local
/// session), the password change, and the identifiers of the subjects logged in. Its field getters
/// (<c>get_is_local_superuser</c>, <c>get_rbac_permissions</c>, <c>get_subject</c>...) are the generic ones: the
/// session record holds what xapi's holds, written at login.
/// </summary>
public sealed class SessionMethods(SessionService sessions) : IApiMethodProvider
{
    public void Register(ApiRegistry registry)
    {
        // uname, pwd, then version and originator, which most clients leave off (the datamodel gives them defaults).
        registry.Implement("session.login_with_password",
            async (ctx, a, ct) => await sessions.LoginAsync((string)a[0]!, (string)a[1]!, (string)a[3]!, ctx.RemoteAddress, ct));
        registry.Add("session.logout", async (ctx, _, ct) =>
        {
            await sessions.LogoutAsync(ctx.SessionRef, ct);
            return null;
        });
        registry.Implement("session.local_logout", (ctx, _, _) =>
        {
            sessions.LocalLogout(ctx.SessionRef);
            return Task.FromResult<object?>(null);
        });
        registry.Implement("session.get_all_subject_identifiers", async (_, _, ct) =>
            (await sessions.GetAllSubjectIdentifiersAsync(ct)).Cast<object?>().ToList());
        registry.Implement("session.logout_subject_identifier", async (ctx, a, ct) =>
        {
            await sessions.LogoutSubjectIdentifierAsync((string)a[0]!, ctx.SessionRef, ct);
            return null;
        });
        registry.Add("session.change_password", async (ctx, a, ct) =>
        {
            var user = await sessions.GetUserAsync(ctx.SessionRef, ct);
            if (!await sessions.PasswordMatchesAsync(user, (string)a[0]!, ctx.RemoteAddress, "session.change_password", ct))
            {
                throw new XenApiException(ErrorCodes.SessionAuthenticationFailed, user, "Authentication failure");
            }

            await sessions.SetPasswordAsync(user, (string)a[1]!, ct);
            // Whoever else held a session of this user (with the old password, maybe a stolen one) holds it no longer.
            await sessions.EndOtherSessionsOfAsync(user, ctx.SessionRef, ct);
            return null;
        }, ("old_pwd", FieldType.String), ("new_pwd", FieldType.String));
    }
}
