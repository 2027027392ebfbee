using Corral.Api.Auth;
using Corral.Api.Dispatch;
using Corral.Api.Sessions;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Api.Methods;

/// <summary>
/// The pool's external directory (<see cref="ExternalAuth"/>): <c>pool.enable_external_auth</c> and
/// <c>pool.disable_external_auth</c>, and <c>auth.*</c>, the questions <c>xe subject-add</c>, XenCenter and Xen
/// Orchestra ask it. With none configured they fail as xapi's do: AUTH_IS_DISABLED (a subject the pool already knows
/// still has its information); a name or identifier the directory does not know is SUBJECT_CANNOT_BE_RESOLVED, a
/// directory that cannot be asked AUTH_SERVICE_ERROR.
/// </summary>
public sealed class AuthMethods(IPoolDatabase database, ExternalAuth external, SessionService sessions) : IApiMethodProvider
{
    public void Register(ApiRegistry registry)
    {
        registry.Implement("pool.enable_external_auth", async (_, a, ct) =>
        {
            await database.GetArgumentAsync(XenClasses.Pool, (string)a[0]!, ct);
            var config = ((Dictionary<string, object?>)a[1]!).ToDictionary(kv => kv.Key, kv => kv.Value as string ?? "", StringComparer.Ordinal);
            await external.EnableAsync(config, (string)a[2]!, (string)a[3]!, ct);
            return null;
        });
        registry.Implement("pool.disable_external_auth", async (_, a, ct) =>
        {
            await database.GetArgumentAsync(XenClasses.Pool, (string)a[0]!, ct);
            var config = ((Dictionary<string, object?>)a[1]!).ToDictionary(kv => kv.Key, kv => kv.Value as string ?? "", StringComparer.Ordinal);
            await external.DisableAsync(config, ct);
            await sessions.EndDirectorySessionsAsync(ct);
            return null;
        });
        registry.Implement("auth.get_subject_identifier", async (_, a, ct) =>
            await ExternalAuth.AskAsync(await external.RequireAsync(ct), (d, s) => d.FindAsync(s, (string)a[0]!, ct))
            ?? throw new XenApiException(ErrorCodes.SubjectCannotBeResolved));
        registry.Implement("auth.get_group_membership", async (_, a, ct) =>
            (await ExternalAuth.AskAsync(await external.RequireAsync(ct), (d, s) => d.GroupsAsync(s, (string)a[0]!, ct))
                ?? throw new XenApiException(ErrorCodes.SubjectCannotBeResolved)).Cast<object?>().ToList());
        registry.Implement("auth.get_subject_information_from_identifier", async (_, a, ct) =>
        {
            var identifier = (string)a[0]!;
            if (await external.CurrentAsync(ct) is not { } current)
            {
                var known = (await database.GetAllAsync(XenApi.Subject.ClassName, ct))
                    .FirstOrDefault(s => s.Get(XenApi.Subject.SubjectIdentifier) == identifier);
                return known is not null ? known[XenApi.Subject.OtherConfig.Name] : throw new XenApiException(ErrorCodes.AuthIsDisabled);
            }

            var information = await ExternalAuth.AskAsync(current, (d, s) => d.InformationAsync(s, identifier, ct))
                ?? throw new XenApiException(ErrorCodes.SubjectCannotBeResolved);
            return information.ToDictionary(kv => kv.Key, kv => (object?)kv.Value, StringComparer.Ordinal);
        });
    }
}
