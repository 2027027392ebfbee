using Corral.Api.Auth;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Corral.Auth.Ldap;

public static class LdapServiceCollectionExtensions
{
    /// <summary>
    /// The external authentication types over LDAP: an LDAP directory (<c>auth_type=LDAP</c>) and Active Directory
    /// (<c>auth_type=AD</c>).
    /// </summary>
    public static IServiceCollection AddLdapDirectory(this IServiceCollection services)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.AddOptions<DirectoryTlsOptions>();
        services.AddOptions<ActiveDirectoryOptions>();
        services.TryAddSingleton<DomainControllerLocator>();
        services.AddSingleton<IExternalDirectory, ActiveDirectory>();
        return services.AddSingleton<IExternalDirectory, LdapDirectory>();
    }
}
