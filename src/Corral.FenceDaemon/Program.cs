using Corral.FenceDaemon;
using Corral.Statefile;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

// corral-fenced: the host's fence, a process apart from the agent (as Proxmox's watchdog-mux and sanlock's wdmd are),
// started before it and stopped after it. It outlives an agent crash, restart or upgrade, and dies with the host. See
// docs/ha.md, "The fence daemon and the watchdog".
// The content root is the program's own directory, not the working directory: under systemd that is "/", and the
// host's configuration reload would then watch the whole file system, /proc included, recursively (inotify).
var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = args, ContentRootPath = AppContext.BaseDirectory });
builder.Logging.ClearProviders();
builder.Logging.AddSimpleConsole(o =>
{
    o.SingleLine = true;
    o.TimestampFormat = "HH:mm:ss.fff ";
});
builder.Services.AddOptions<FenceOptions>().Bind(builder.Configuration.GetSection("Corral:Fence")).ValidateOnStart();
builder.Services.AddSingleton<IValidateOptions<FenceOptions>, FenceOptionsValidation>();
builder.Services.AddSingleton(TimeProvider.System);
builder.Services.AddSingleton<FenceState>();
builder.Services.AddSingleton<VolumeExports>();
builder.Services.AddSingleton<VmProcesses>();
builder.Services.AddSingleton<Watchdog>();
builder.Services.AddHostedService<AgentChannel>();
builder.Services.AddHostedService<HeartbeatWriter>();
builder.Services.AddHostedService<FenceLoop>();
try
{
    await builder.Build().RunAsync();
}
catch (OptionsValidationException refused)
{
    // A bad setting, named; exit status 78 (EX_CONFIG), which the package's unit does not retry.
    foreach (var failure in refused.Failures)
    {
        await Console.Error.WriteLineAsync($"corral-fenced: refusing to start: {failure}");
    }

    return 78;
}

return 0;
