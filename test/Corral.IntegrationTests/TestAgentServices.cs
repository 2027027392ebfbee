using Corral.Agent.Hosting;
using Corral.Agent.Vms;
using Corral.Api;
using Corral.Hypervisor.Qemu;
using Corral.Networking;
using Corral.PoolDatabase.Etcd;
using Corral.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Corral.IntegrationTests;

/// <summary>
/// The core of a host's agent as the tests that run parts of it assemble it, registered as the agent registers them:
/// logging, the pool database, the XenAPI, the host's identity and state directory, QEMU, and the VM supervisor with
/// what it needs. Each test adds the services of its own.
/// </summary>
internal static class TestAgentServices
{
    public static ServiceCollection Create(string root, string state, HostIdentity host, Action<EtcdOptions> etcd, SrDrivers? drivers = null)
    {
        var services = new ServiceCollection();
        services.AddLogging(l => l.AddConsole().SetMinimumLevel(LogLevel.Warning));
        services.AddEtcdPoolDatabase(etcd);
        services.AddXenApi(o =>
        {
            o.HostRef = host.Ref;
            o.StateDirectory = state;
        });
        services.AddSingleton(drivers ?? SrDrivers.Default);
        services.AddSingleton<IShareMounts>(sp => new Corral.Storage.Smb.SmbNetFsMounts(Path.Combine(state, "sr-mount"),
            Microsoft.Extensions.Logging.Abstractions.NullLogger<Corral.Storage.Smb.SmbNetFsMounts>.Instance));
        services.AddSingleton(host);
        services.Configure<AgentOptions>(o => o.StateDirectory = state);
        services.AddQemuHypervisor(o =>
        {
            o.RuntimeDirectory = Path.Combine(root, "vms");
            o.StateDirectory = Path.Combine(state, "qemu");
        });
        services.AddSingleton<BridgeNetworking>();
        services.AddSingleton<VmDevices>();
        services.AddSingleton<GuestMetricsWriter>();
        services.AddSingleton<VmSupervisor>();
        return services;
    }
}
