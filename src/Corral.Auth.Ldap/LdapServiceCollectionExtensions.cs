using Corral.Api.Auth;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Corral.Auth.Ldap;

public static class LdapServiceCollectionExtensions
{
    /// <summary>An LDAP directory as an external authentication type (<c>auth_type=LDAP</c>).</summary>
    public static IServiceCollection AddLdapDirectory(this IServiceCollection services)
    {
        services.TryAddSingleton(TimeProvider.System);
        return services.AddSingleton<IExternalDirectory, LdapDirectory>();
    }
}
