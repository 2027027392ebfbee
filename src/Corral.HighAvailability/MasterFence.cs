using Microsoft.Extensions.Logging;

namespace Corral.HighAvailability;

/// <summary>Everything <see cref="MasterFence"/> reads and does: the agent's over etcd, the network and the fence agents, the simulation's over its pool.</summary>
public interface IMasterFenceWorld
{
    /// <summary>Whether HA is on, as this host last read it.</summary>
    bool HaEnabled { get; }

    /// <summary>Whether this host holds a liveness lease it may count on now.</summary>
    bool LeaseSafe { get; }

    /// <summary>The pool master as this host knows it; null when there is none or it is this host.</summary>
    Task<HaHost?> MasterAsync(CancellationToken cancellationToken);

    /// <summary>
    /// One probe of the host over the management network, waiting at most <see cref="HaTimings.ProbeInterval"/>: true
    /// when the host answered (a connection accepted, or refused by a running kernel: anything but silence).
    /// </summary>
    Task<bool> ProbeAsync(HaHost host, CancellationToken cancellationToken);

    /// <summary>The host's storage heartbeat counter as this host reads it; null when it has none.</summary>
    long? Heartbeat(HaHost host);

    /// <summary>How long this host has watched the heartbeat stand still, up to its last successful read (<see cref="HeartbeatWatch.StillFor"/>).</summary>
    TimeSpan? HeartbeatStillFor(HaHost host);

    /// <summary>
    /// Whether the pool database still names the host master (the master key, on its lease): false once its lease ended
    /// or another survivor has fenced it already. Read afresh, just before a fence.
    /// </summary>
    Task<bool> StillMasterAsync(HaHost host, CancellationToken cancellationToken);

    /// <summary>Powers the host off with its fence agent; true once it is known off.</summary>
    Task<bool> PowerFenceAsync(HaHost host, CancellationToken cancellationToken);

    /// <summary>
    /// For a host known off: its recovery recorded power-fenced (created, or an existing waiting one marked), then its
    /// liveness lease revoked, which takes the master key and its VMs' ownership claims with it at once instead of when
    /// the lease would have expired.
    /// </summary>
    Task DeclarePowerFencedAsync(HaHost host, long? heartbeat, CancellationToken cancellationToken);
}

/// <summary>
/// The survivors' half of a dead master, run by every host that is not the master, one probe at a time. A master whose
/// host dies takes the pool's only recovery engine with it, and its liveness lease outlives it by its TTL, more when its
/// etcd member led (etcd's new leader renews every lease before expiring any): seconds in which nobody may act. A
/// survivor that finds the master silent on both channels (no answer over the management network for
/// <see cref="HaTimings.MasterUnreachableFor"/>, and its storage heartbeat still for
/// <see cref="HaTimings.MasterHeartbeatStillFor"/> as this survivor read it) powers it off with its fence agent, and
/// once it is known off records it fenced and revokes its lease: a new master is elected at once and finds its recovery
/// waiting. Without a fence agent nothing is done here (there is no proof the host is off); the master's lease then
/// expires as before. Both windows are at least the host's own watchdog timeout, so no stall the host would have lived
/// through is fenced: a host frozen that long has been reset by its watchdog already.
/// </summary>
public sealed class MasterFence(HaTimings timings, TimeProvider clock, ILogger logger)
{
    private string? _watched;
    private TimeSpan? _silentSince;
    private TimeSpan? _lastProbe;
    private TimeSpan? _lastAttempt;
    private bool _saidNoAgent;

    private TimeSpan Monotonic => MonotonicClock.Now(clock);

    /// <summary>How long the master has failed every probe, from the first failed one to the last; zero when it answered last.</summary>
    public TimeSpan SilentFor { get; private set; }

    /// <summary>One probe and its decision. True when this round powered the master off and declared it fenced.</summary>
    public async Task<bool> RunOnceAsync(IMasterFenceWorld world, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(world);
        if (!world.HaEnabled || !world.LeaseSafe || await world.MasterAsync(cancellationToken) is not { } master)
        {
            Forget(null);
            return false;
        }

        if (master.Ref != _watched)
        {
            Forget(master.Ref);
        }

        var began = Monotonic;
        var answered = await world.ProbeAsync(master, cancellationToken);
        Probed(answered, began);
        if (answered || SilentFor < timings.MasterUnreachableFor)
        {
            return false;
        }

        if (!master.HasFenceAgent)
        {
            if (!_saidNoAgent)
            {
                _saidNoAgent = true;
                logger.LogWarning(HaEvents.MasterSilent, "HA: master {Host} has not answered for {Seconds:0.0} s and has no fence agent: waiting for its lease to expire",
                    master.Name, SilentFor.TotalSeconds);
            }

            return false;
        }

        var stillFor = world.HeartbeatStillFor(master);
        if (stillFor is null || stillFor < timings.MasterHeartbeatStillFor || (_lastAttempt is { } tried && began - tried < timings.RetryUnplaced))
        {
            // A heartbeat that moves (or that this host cannot read) says the master may be alive: its lease decides.
            return false;
        }

        if (!await world.StillMasterAsync(master, cancellationToken))
        {
            // Another survivor fenced it, or its lease ended: the election moves on without this host's help.
            Forget(null);
            return false;
        }

        _lastAttempt = began;
        logger.LogWarning(HaEvents.MasterSilent, "HA: master {Host} silent for {Seconds:0.0} s and its storage heartbeat still for {Still:0.0} s: powering it off",
            master.Name, SilentFor.TotalSeconds, stillFor.Value.TotalSeconds);
        if (!await world.PowerFenceAsync(master, cancellationToken))
        {
            logger.LogWarning(HaEvents.MasterSilent, "HA: the fence agent of master {Host} failed; its lease decides", master.Name);
            return false;
        }

        await world.DeclarePowerFencedAsync(master, world.Heartbeat(master), cancellationToken);
        logger.LogWarning(HaEvents.MasterFenced, "HA: master {Host} powered off by its fence agent; its lease revoked, a new master takes over its recovery", master.Name);
        Forget(null);
        return true;
    }

    private void Probed(bool answered, TimeSpan began)
    {
        // A gap between probes (this host stalled, or its probes ran late) is no evidence: the count starts again.
        var continuous = _lastProbe is { } last && began - last <= timings.ProbeInterval * 4;
        _lastProbe = began;
        if (answered)
        {
            _silentSince = null;
            SilentFor = TimeSpan.Zero;
            _saidNoAgent = false;
            return;
        }

        if (_silentSince is null || !continuous)
        {
            _silentSince = began;
        }

        SilentFor = began - _silentSince.Value;
    }

    private void Forget(string? master)
    {
        _watched = master;
        _silentSince = null;
        _lastProbe = null;
        SilentFor = TimeSpan.Zero;
        _saidNoAgent = false;
    }
}
