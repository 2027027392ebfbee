using Corral.Agent.Operations;
using Microsoft.Extensions.Options;

namespace Corral.Agent.Networking;

public static class HostNetworkingServices
{
    /// <summary>The host's network cards as PIFs: the options (validated at start), the monitor, and <c>PIF.scan</c>'s handler.</summary>
    public static IServiceCollection AddHostNetworking(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<HostNetworkOptions>().Bind(configuration.GetSection("Corral:Network")).ValidateOnStart();
        services.AddSingleton<IValidateOptions<HostNetworkOptions>, HostNetworkOptionsValidation>();
        services.AddSingleton(sp => new PifAddressStore(Path.Combine(sp.GetRequiredService<IOptions<Hosting.AgentOptions>>().Value.StateDirectory, "pif-ip.json")));
        services.AddSingleton(sp => new PifAddressing(sp.GetRequiredService<IOptions<HostNetworkOptions>>().Value.DhcpClient,
            Path.Combine(AppContext.BaseDirectory, "dhclient-script"),
            Path.Combine(sp.GetRequiredService<IOptions<Hosting.AgentOptions>>().Value.StateDirectory, "dhclient")));
        services.AddSingleton<HostNicMonitor>();
        services.AddHostedService(sp => sp.GetRequiredService<HostNicMonitor>());
        services.AddSingleton<IHostOperationHandler, PifOperationHandler>();
        return services;
    }
}
