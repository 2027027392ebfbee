using Microsoft.Extensions.Logging;

namespace Corral.Agent.Hosting;

/// <summary>Event ids of the agent's own decisions about its host and its pool (2501 is StartupSettings' refusal).</summary>
public static class AgentEvents
{
    /// <summary>The pool's hosts run different builds: xapi's rolling-upgrade rules apply until they run one.</summary>
    public static readonly EventId RollingUpgrade = new(2510, nameof(RollingUpgrade));
}
