using Microsoft.Extensions.Configuration.Memory;

namespace Corral.Agent.Hosting;

/// <summary>
/// The agent's logging levels by default: Corral's own categories at Information, ASP.NET Core's at Warning (at
/// Information it logs every request's start, endpoint and end, four lines per XenAPI call, which buried the agent's
/// own lines). They are the first configuration source, so any other (the environment's
/// <c>Logging__LogLevel__Microsoft.AspNetCore=Information</c>, a settings file) still overrides them.
/// </summary>
public static class AgentLogging
{
    public static IReadOnlyDictionary<string, string?> Defaults { get; } = new Dictionary<string, string?>(StringComparer.Ordinal)
    {
        ["Logging:LogLevel:Default"] = "Information",
        ["Logging:LogLevel:Microsoft.AspNetCore"] = "Warning",
        ["Logging:LogLevel:Corral"] = "Information",
    };

    /// <summary>Adds <see cref="Defaults"/> beneath every configuration source already there.</summary>
    public static void AddDefaults(IConfigurationBuilder configuration) =>
        configuration.Sources.Insert(0, new MemoryConfigurationSource { InitialData = Defaults });
}
