using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Agent.Storage;

/// <summary>Which hosts have joined which SRs' lockspaces, as the master's placement asks.</summary>
public sealed partial class VmLeases
{
    /// <summary>Where a host says it has joined an SR's lockspace: a key on its liveness lease, gone with the host or that lease.</summary>
    public static string JoinedKey(string hostRef, string srUuid) => $"{PoolKeys.Root}vm-leases/joined/{hostRef}/{srUuid}";

    /// <summary>
    /// Whether a start of the VM on the host would begin at once (the master's placement asks): true unless the VM's
    /// lease is on an SR whose lockspace the host has not said it joined.
    /// </summary>
    public async Task<bool> ReadyOnAsync(XenObject vm, string hostRef, CancellationToken cancellationToken) =>
        (await ReadyHostsAsync(vm, [hostRef], cancellationToken)).Contains(hostRef);

    /// <summary>Those of the hosts where a start would begin at once (<see cref="ReadyOnAsync"/>), the VM's lease SR looked up once for all.</summary>
    public async Task<IReadOnlySet<string>> ReadyHostsAsync(XenObject vm, IReadOnlyList<string> hostRefs, CancellationToken cancellationToken)
    {
        var ready = new HashSet<string>(StringComparer.Ordinal);
        var sr = Enabled ? await LeaseSrOfAsync(vm, cancellationToken) : null;
        foreach (var hostRef in hostRefs)
        {
            if (sr is null || await database.Leases.GetValueAsync(JoinedKey(hostRef, sr.Uuid), cancellationToken) is not null)
            {
                ready.Add(hostRef);
            }
        }

        return ready;
    }

    /// <summary>
    /// Says which lockspaces this host has joined (<see cref="JoinedKey"/>), once per SR and liveness lease: a new lease
    /// (the agent restarted, or lost it) gets the keys again.
    /// </summary>
    public async Task PublishJoinedAsync(CancellationToken cancellationToken)
    {
        if (liveness.Lease is not { } lease)
        {
            return;
        }

        foreach (var (srUuid, join) in _joins)
        {
            if (join.IsValueCreated && join.Value.IsCompletedSuccessfully && _published.GetValueOrDefault(srUuid) != lease.Id)
            {
                await database.Leases.PutAsync(lease, JoinedKey(identity.Ref, srUuid), "joined", cancellationToken);
                _published[srUuid] = lease.Id;
            }
        }
    }
}
