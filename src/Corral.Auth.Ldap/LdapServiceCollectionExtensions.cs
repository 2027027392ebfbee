using Corral.Api.Auth;
using Microsoft.Extensions.DependencyInjection;

namespace Corral.Auth.Ldap;

public static class LdapServiceCollectionExtensions
{
    /// <summary>An LDAP directory as an external authentication type (<c>auth_type=LDAP</c>).</summary>
    public static IServiceCollection AddLdapDirectory(this IServiceCollection services) =>
        services.AddSingleton<IExternalDirectory, LdapDirectory>();
}
