using Corral.HighAvailability;

namespace Corral.UnitTests.HaSimulation;

/// <summary>
/// <see cref="IMasterFenceWorld"/> over the simulated pool, as one host that is not the master sees it: the master it
/// believes in, a probe that a host answers while it is powered, not frozen (a hung machine answers nothing) and not cut
/// from this one, the heartbeats as this host watched them, the master's fence agent, and its recovery record and lease
/// in <see cref="SimEtcd"/>, as <c>PoolMasterFenceWorld</c> does in the agent.
/// </summary>
public sealed class SimMasterFenceWorld(Simulation sim, SimHost me) : IMasterFenceWorld
{
    public bool HaEnabled => me.HaEnabledView;

    public bool LeaseSafe => me.LeaseSafe;

    public Task<HaHost?> MasterAsync(CancellationToken cancellationToken) =>
        Task.FromResult(me.BelievedMaster is { } name && name != me.Name && sim.Host(name) is var master
            ? new HaHost(master.Name, master.Name, master.Name, true, true, master.Spec.Fence.Length > 0)
            : null);

    public Task<bool> ProbeAsync(HaHost host, CancellationToken cancellationToken)
    {
        var target = sim.Host(host.Ref);
        return Task.FromResult(target.Powered && !target.Frozen && sim.Connected(me.Name, target.Name));
    }

    public long? Heartbeat(HaHost host) => me.World.Heartbeat(host);

    public TimeSpan? HeartbeatStillFor(HaHost host) => me.World.HeartbeatStillFor(host);

    public Task<bool> StillMasterAsync(HaHost host, CancellationToken cancellationToken) => Task.FromResult(sim.Etcd.Get(me, SimKeys.Master) == host.Ref);

    public Task<bool> PowerFenceAsync(HaHost host, CancellationToken cancellationToken) => me.World.PowerFenceAsync(host, cancellationToken);

    public Task DeclarePowerFencedAsync(HaHost host, long? heartbeat, CancellationToken cancellationToken)
    {
        var key = SimKeys.Recoveries + host.Ref;
        var (json, revision) = sim.Etcd.GetWithRevision(me, key);
        var existing = json is null ? null : RecoveryRecord.FromJson(json);
        if (RecoveryRecord.PowerFencedBySurvivor(existing, host.Ref, me.Clock.UtcNow, heartbeat) is { } record)
        {
            sim.Etcd.Txn(me, [(key, revision)], [(key, record.ToJson(), 0)]);
        }

        sim.Etcd.RevokeHolder(me, SimKeys.Master, host.Ref);
        return Task.CompletedTask;
    }
}
