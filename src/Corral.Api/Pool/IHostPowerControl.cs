using Corral.Model;

namespace Corral.Api.Pool;

/// <summary>
/// Powers a host on from elsewhere in the pool, through the host's <c>power_on_mode</c> and <c>power_on_config</c>
/// (the same settings HA's fence agents power it off with). Implemented by the agent.
/// </summary>
public interface IHostPowerControl
{
    /// <summary>Powers <paramref name="host"/> on; throws a XenAPI error saying why when it could not.</summary>
    Task PowerOnAsync(XenObject host, CancellationToken cancellationToken);
}
