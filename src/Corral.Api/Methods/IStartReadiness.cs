using Corral.Model;

namespace Corral.Api.Methods;

/// <summary>
/// Whether a start of a VM on a host would begin at once: false while the host has yet to join the lockspace of the
/// VM's lease on shared storage (a host just back from a reboot takes 2-3 × sanlock's I/O timeout to), which the start
/// would wait for. <see cref="Placement"/> prefers hosts where it is true. Implemented by the agent's VM leases.
/// </summary>
public interface IStartReadiness
{
    /// <summary>Those of <paramref name="hostRefs"/> where a start of the VM would begin at once.</summary>
    Task<IReadOnlySet<string>> ReadyHostsAsync(XenObject vm, IReadOnlyList<string> hostRefs, CancellationToken cancellationToken);
}
