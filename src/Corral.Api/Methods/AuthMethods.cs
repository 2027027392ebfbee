using Corral.Api.Dispatch;
using Corral.Api.Sessions;
using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.Extensions.Options;

namespace Corral.Api.Methods;

/// <summary>
/// <c>auth</c>: questions for the pool's external directory. Corral has none yet, so they fail as xapi fails with
/// none configured (<c>host.external_auth_type</c> empty): AUTH_IS_DISABLED, or AUTH_UNKNOWN_TYPE for a type Corral
/// has no plugin for. As in xapi, a subject's information is first looked up among the pool's subjects.
/// XenCenter asks these only for logins that are not root's, and ignores their failures.
/// </summary>
public sealed class AuthMethods(IPoolDatabase database, IOptions<ApiOptions> options) : IApiMethodProvider
{
    public void Register(ApiRegistry registry)
    {
        registry.Implement("auth.get_subject_identifier", async (_, _, ct) => throw await NoDirectoryAsync(ct));
        registry.Implement("auth.get_group_membership", async (_, _, ct) => throw await NoDirectoryAsync(ct));
        registry.Implement("auth.get_subject_information_from_identifier", async (_, a, ct) =>
        {
            var identifier = (string)a[0]!;
            var known = (await database.GetAllAsync(XenApi.Subject.ClassName, ct))
                .FirstOrDefault(s => s.Get(XenApi.Subject.SubjectIdentifier) == identifier);
            return known is not null ? known[XenApi.Subject.OtherConfig.Name] : throw await NoDirectoryAsync(ct);
        });
    }

    private async Task<XenApiException> NoDirectoryAsync(CancellationToken cancellationToken)
    {
        var host = OpaqueRef.IsWellFormed(options.Value.HostRef)
            ? await database.TryGetAsync(XenClasses.Host, options.Value.HostRef, cancellationToken)
            : null;
        var type = host?.Get(XenApi.Host.ExternalAuthType) ?? "";
        return type.Length == 0 ? new XenApiException(ErrorCodes.AuthIsDisabled) : new XenApiException(ErrorCodes.AuthUnknownType, type);
    }
}
