using Microsoft.Extensions.DependencyInjection;

namespace Corral.PoolDatabase.Etcd;

public static class EtcdServiceCollectionExtensions
{
    public static IServiceCollection AddEtcdPoolDatabase(this IServiceCollection services, Action<EtcdOptions>? configure = null)
    {
        var options = services.AddOptions<EtcdOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        services.AddSingleton<EtcdPoolDatabase>();
        services.AddSingleton<IPoolDatabase>(sp => sp.GetRequiredService<EtcdPoolDatabase>());
        return services;
    }
}
