using Corral.Agent.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Xunit;

namespace Corral.UnitTests;

/// <summary>The agent's logging levels by default (<see cref="AgentLogging"/>).</summary>
public sealed class AgentLoggingTests
{
    [Fact]
    public void The_agent_logs_aspnet_cores_warnings_only_and_corrals_information()
    {
        // As Program builds the agent's host (not started).
        static ILoggerFactory Build(IDictionary<string, string?>? overrides)
        {
            var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Production" });
            builder.Configuration.AddInMemoryCollection(overrides ?? new Dictionary<string, string?>());
            AgentLogging.AddDefaults(builder.Configuration);
            return builder.Build().Services.GetRequiredService<ILoggerFactory>();
        }

        var factory = Build(null);
        Assert.False(factory.CreateLogger("Microsoft.AspNetCore.Hosting.Diagnostics").IsEnabled(LogLevel.Information));
        Assert.True(factory.CreateLogger("Microsoft.AspNetCore.Routing.EndpointMiddleware").IsEnabled(LogLevel.Warning));
        Assert.True(factory.CreateLogger("Corral.Api.AllowedOperations.AllowedOperationsService").IsEnabled(LogLevel.Information));
        Assert.False(factory.CreateLogger("Corral.Api.AllowedOperations.AllowedOperationsService").IsEnabled(LogLevel.Debug));
        Assert.True(factory.CreateLogger("Microsoft.Hosting.Lifetime").IsEnabled(LogLevel.Information));

        // Any configuration given (the environment's Logging__LogLevel__...) still wins.
        var verbose = Build(new Dictionary<string, string?> { ["Logging:LogLevel:Microsoft.AspNetCore"] = "Information" });
        Assert.True(verbose.CreateLogger("Microsoft.AspNetCore.Hosting.Diagnostics").IsEnabled(LogLevel.Information));
    }
}
