using Corral.Api;
using Corral.Api.Dispatch;
using Corral.Api.Https;
using Corral.Api.Methods;
using Corral.Api.Pool;
using Corral.PoolDatabase;
using Corral.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Corral.Compatibility;

/// <summary>
/// The message registry of Corral's agent, built through the agent's own registration (<see cref="ApiServiceCollectionExtensions.AddXenApi"/>
/// plus the pool membership messages every pool host adds, and its HTTPS service's), so that "implemented" means "a handler is bound" in the
/// dispatcher that answers clients, never a hand-kept list. The providers' services that would reach the pool
/// database or the etcd membership refuse every call.
/// </summary>
public static class AgentRegistry
{
    public static ApiRegistry Build()
    {
        var services = new ServiceCollection();
        services.AddLogging(logging => logging.SetMinimumLevel(LogLevel.Warning));
        services.AddSingleton(RefusingProxy.Create<IPoolDatabase>("the pool database"));
        services.AddSingleton(RefusingProxy.Create<IPoolMembership>("the pool membership"));
        services.AddSingleton(SrDrivers.Default);
        services.AddSingleton<RemoteHosts>();
        services.AddXenApi();
        // As the agent registers them on every host that runs an etcd member (every lab and production host).
        services.AddSingleton<IApiMethodProvider, PoolMembershipMethods>();
        // And its HTTPS service, whose server certificate can be replaced (a certificate made here, never served).
        var subjects = HostCertificateSubjects.For("compatibility", "127.0.0.1");
        var (certificate, _) = HostCertificateFile.Create(subjects, 1, TimeProvider.System);
        services.AddXenApiHttps(new HttpsOptions(), new HostCertificate(certificate, "unused"), subjects);
        using var provider = services.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true });
        return provider.GetRequiredService<ApiDispatcher>().Registry;
    }
}
