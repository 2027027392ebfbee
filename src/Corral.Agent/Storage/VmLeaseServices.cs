using Corral.Api.Methods;
using Corral.Hypervisor;
using Corral.Leases.Sanlock;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Corral.Agent.Storage;

public static class VmLeaseServices
{
    /// <summary>
    /// VM leases on shared storage through the host's sanlock daemon, configured by <paramref name="section"/>
    /// (<c>Corral:Sanlock</c>): the options (checked at start), <see cref="VmLeases"/>, its keeper, and, when enabled, the
    /// launcher that makes the hypervisor start QEMU holding the lease.
    /// </summary>
    public static IServiceCollection AddVmLeases(this IServiceCollection services, IConfiguration section)
    {
        services.AddOptions<SanlockOptions>().Bind(section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<SanlockOptions>, SanlockOptionsValidation>();
        services.AddSingleton<SanlockClient>();
        services.TryAddSingleton<Corral.Statefile.VolumeExports>();
        services.AddSingleton<LeaseVolumes>();
        services.AddSingleton<VmLeases>();
        services.AddSingleton<IStartReadiness>(sp => sp.GetRequiredService<VmLeases>());
        services.AddHostedService<VmLeaseKeeper>();
        if (section.Get<SanlockOptions>() is { Enabled: true })
        {
            services.AddSingleton<IVmLeaseLauncher, SanlockLeaseLauncher>();
        }

        return services;
    }
}
