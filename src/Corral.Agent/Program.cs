using Corral.Agent.Hosting;
using Corral.Agent.Operations;
using Corral.Agent.Storage;
using Corral.Agent.Vms;
using Corral.Api;
using Corral.Api.Http;
using Corral.Api.Sessions;
using Corral.Hypervisor.Qemu;
using Corral.Networking;
using Corral.PoolDatabase.Etcd;
using Corral.Storage;

var builder = WebApplication.CreateBuilder(args);
builder.Logging.AddSimpleConsole(o =>
{
    o.SingleLine = true;
    o.TimestampFormat = "HH:mm:ss.fff ";
});

var agentSection = builder.Configuration.GetSection("Corral:Agent");
var agent = agentSection.Get<AgentOptions>() ?? new AgentOptions();
var identity = HostIdentity.LoadOrCreate(agent.StateDirectory);

builder.Services.Configure<AgentOptions>(agentSection);
builder.Services.Configure<PoolDefaultsOptions>(builder.Configuration.GetSection("Corral:PoolDefaults"));
builder.Services.AddSingleton(identity);
builder.Services.AddEtcdPoolDatabase(o => builder.Configuration.GetSection("Corral:Etcd").Bind(o));
builder.Services.AddQemuHypervisor(o =>
{
    builder.Configuration.GetSection("Corral:Qemu").Bind(o);
    o.StateDirectory = string.IsNullOrEmpty(o.StateDirectory) ? Path.Combine(agent.StateDirectory, "qemu") : o.StateDirectory;
});
builder.Services.AddXenApi(o =>
{
    o.HostRef = identity.Ref;
    builder.Configuration.GetSection("Corral:Api").Bind(o);
});
builder.Services.AddSingleton(SrDrivers.Default);
builder.Services.AddSingleton<BridgeNetworking>();
builder.Services.AddSingleton<VmSupervisor>();
builder.Services.AddSingleton<HostLiveness>();
builder.Services.AddHostedService(sp => sp.GetRequiredService<HostLiveness>());
builder.Services.AddSingleton<IHostOperationHandler, VmOperationHandler>();
builder.Services.AddSingleton<IHostOperationHandler, StorageOperationHandler>();
builder.Services.AddHostedService<HostOperationWorker>();
builder.Services.AddHostedService<PoolDefaults>();
builder.Services.AddHostedService<MasterElection>();

var app = builder.Build();
app.MapXenApi();
app.Run();
