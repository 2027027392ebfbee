using Corral.Api.Dispatch;
using Corral.Api.Events;
using Corral.Api.Methods;
using Corral.Api.Operations;
using Corral.Api.Pool;
using Corral.Api.Sessions;
using Corral.Api.Tasks;
using Microsoft.Extensions.DependencyInjection;

namespace Corral.Api;

public static class ApiServiceCollectionExtensions
{
    /// <summary>Registers the XenAPI: dispatcher, sessions, tasks, events and every class's messages.</summary>
    public static IServiceCollection AddXenApi(this IServiceCollection services, Action<ApiOptions>? configure = null)
    {
        var options = services.AddOptions<ApiOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        services.AddSingleton<LocalCredentials>();
        services.AddSingleton<SessionService>();
        services.AddSingleton<TaskService>();
        services.AddSingleton<EventHub>();
        services.AddHostedService(sp => sp.GetRequiredService<EventHub>());
        services.AddSingleton<HostOperationQueue>();
        services.AddSingleton<Placement>();
        services.AddSingleton<HighAvailability.FailoverPlanning>();
        services.AddSingleton<VmStarter>();
        services.AddSingleton<Migration.MigrationStarter>();
        services.AddSingleton<Migration.EvacuationPlanner>();
        services.AddSingleton<MasterState>();
        services.AddSingleton<Devices.DeviceOperations>();
        services.AddSingleton<IApiMethodProvider, GenericClassMethods>();
        // Class providers come after the generic one so that their messages replace generic setters of the same name.
        services.AddSingleton<IApiMethodProvider, SessionMethods>();
        services.AddSingleton<IApiMethodProvider, TaskMethods>();
        services.AddSingleton<IApiMethodProvider, EventMethods>();
        services.AddSingleton<IApiMethodProvider, VmMethods>();
        services.AddSingleton<IApiMethodProvider, HostMethods>();
        services.AddSingleton<IApiMethodProvider, StorageMethods>();
        services.AddSingleton<IApiMethodProvider, NetworkMethods>();
        services.AddSingleton<IApiMethodProvider, PbdMethods>();
        services.AddSingleton<IApiMethodProvider, SrRecordMethods>();
        services.AddSingleton<IApiMethodProvider, VbdMethods>();
        services.AddSingleton<IApiMethodProvider, VifMethods>();
        services.AddSingleton<IApiMethodProvider, PoolMethods>();
        services.AddSingleton<IApiMethodProvider, MigrationMethods>();
        services.AddSingleton<IApiMethodProvider, EvacuationMethods>();
        services.AddSingleton<IApiMethodProvider, HaMethods>();
        services.AddSingleton<IApiMethodProvider, SystemMethods>();
        services.AddSingleton<ApiDispatcher>();
        return services;
    }
}
