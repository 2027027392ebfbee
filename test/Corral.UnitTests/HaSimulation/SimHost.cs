using Corral.HighAvailability;
using Corral.PoolDatabase;
using Microsoft.Extensions.Logging;

namespace Corral.UnitTests.HaSimulation;

/// <summary>A host's clock: the simulation's, at the host's rate (a host whose clock runs fast or slow).</summary>
public sealed class HostClock(Simulation sim, double rate) : TimeProvider
{
    public DateTime UtcNow => Simulation.Epoch + TimeSpan.FromTicks((long)(sim.Now.Ticks * rate));

    public override DateTimeOffset GetUtcNow() => new(UtcNow);

    /// <summary>The host's monotonic clock: the same clock here (the simulation steps no clock), in ticks.</summary>
    public override long GetTimestamp() => (UtcNow - Simulation.Epoch).Ticks;

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    /// <summary>The simulation time that passes while this clock counts <paramref name="hostTime"/>.</summary>
    public TimeSpan ToSimulation(TimeSpan hostTime) => TimeSpan.FromTicks((long)(hostTime.Ticks / rate));
}

/// <summary>
/// One host: its power, its etcd member, its agent and its QEMU processes. The agent does what Corral's agent does,
/// on the same timings and with the same rules: liveness lease renewed every TTL/4 with the ack timeout and safe time
/// of <see cref="LeaseTiming"/> (HostLiveness, EtcdLease), the self-fence check every 100 ms
/// (<see cref="SelfFencePolicy"/>), the storage heartbeat every second (<see cref="HeartbeatWatch"/>), the master
/// election on the liveness lease, and, as master, <see cref="RecoveryEngine"/> every 250 ms. A frozen host's timers
/// and processes run late, when it thaws: its processes first, as a stopped QEMU resumes at once.
/// </summary>
public sealed class SimHost
{
    private static readonly TimeSpan CoordinatorTick = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan WriteInterval = TimeSpan.FromMilliseconds(100);

    private readonly Simulation _sim;
    private readonly List<Action> _deferredProcesses = [];
    private readonly List<Action> _deferredAgent = [];
    private readonly List<Action> _deferredDaemon = [];
    private bool _resetPending;
    private TimeSpan _lockspaceJoinedAt;
    private int _agentEpoch;
    private bool _agentUp;
    private long _keepAliveSequence;
    private long _pendingKeepAlive;
    private FenceGrace _selfFenceGrace = new();
    private long _counter;

    // The storage heartbeat's and the self-fence's state, as StorageHeartbeat and SelfFence keep it.
    private DateTime? _lastBeatBegan;
    private bool _beatFenced;
    private DateTime? _unsafeSince;
    private RecoveryEngine? _engine;
    private SimRecoveryWorld? _world;
    private MasterFence? _masterFence;
    private SimMasterFenceWorld? _masterFenceWorld;
    private bool _roundFailing;
    private bool _adopted;
    private readonly SortedSet<string> _fenced = new(StringComparer.Ordinal);

    public SimHost(Simulation sim, HostSpec spec)
    {
        _sim = sim;
        Spec = spec;
        Clock = new HostClock(sim, spec.ClockRate);
        SelfFenceIgnoresIncoming = sim.Scenario.LegacySelfFenceIgnoresIncoming;
        Daemon = sim.Scenario.FenceDaemon ? new SimFenceDaemon(sim, this) : null;
    }

    /// <summary>The host's fence daemon and watchdog; null with <c>fence-daemon off</c> (the agent writes the heartbeat itself).</summary>
    public SimFenceDaemon? Daemon { get; }

    public HostSpec Spec { get; }

    public string Name => Spec.Name;

    public HostClock Clock { get; }

    public bool Powered { get; private set; }

    public bool Frozen { get; private set; }

    public bool MemberUp { get; set; } = true;

    /// <summary>The member cannot be started again (its data lost): the agent's supervisor fails to restart it.</summary>
    public bool MemberBroken { get; set; }

    public bool StorageCut { get; set; }

    /// <summary>etcd's ports blocked: the host reaches no other member and none reaches its member; other traffic passes.</summary>
    public bool EtcdCut { get; set; }

    public bool AgentRunning => Powered && !Frozen && _agentUp;

    public long? LeaseId { get; private set; }

    public DateTime SafeUntil { get; private set; }

    public bool LeaseLost { get; private set; }

    public bool HaEnabledView { get; private set; }

    public string? BelievedMaster { get; private set; }

    public HeartbeatWatch Watch { get; private set; } = new();

    public SortedDictionary<string, SimProcess> Processes { get; } = new(StringComparer.Ordinal);

    /// <summary>Live migrations' incoming copies (VmSupervisor's incoming processes), until the migration ends.</summary>
    public SortedDictionary<string, SimProcess> Incoming { get; } = new(StringComparer.Ordinal);

    /// <summary>
    /// The host's queued operations (a live migration's halves), persisted in the pool database: the next agent resumes
    /// them once it has adopted its VMs (HostOperationWorker), keyed by operation.
    /// </summary>
    public SortedDictionary<string, Action> Operations { get; } = new(StringComparer.Ordinal);

    /// <summary>
    /// The self-fence as it was before it counted incoming copies: it killed only the VMs the supervisor tracks, so a
    /// destination cut off right after a switchover ran on (the <c>legacy self-fence-ignores-incoming</c> directive).
    /// </summary>
    internal bool SelfFenceIgnoresIncoming { get; }

    public SimRecoveryWorld World => _world ?? throw new InvalidOperationException($"{Name}'s agent never started");

    /// <summary>The copy of the VM that runs its guest here, if any: not a paused source, not an incoming copy still waiting.</summary>
    public SimProcess? RunningCopy(string vm) =>
        !Powered || Frozen ? null
        : Processes.TryGetValue(vm, out var process) && process.RunsGuest ? process
        : Incoming.TryGetValue(vm, out var incoming) && incoming.Alive && incoming.RunsGuest ? incoming
        : null;

    public bool HasProcess(string vm) => Processes.ContainsKey(vm) || (Incoming.TryGetValue(vm, out var incoming) && incoming.Alive);

    public bool LeaseSafe => LeaseId is not null && SelfFencePolicy.LeaseSafe(LeaseLost, SafeUntil - Simulation.Epoch, Clock.UtcNow - Simulation.Epoch);

    private TimeSpan Ttl => _sim.Scenario.Timings.LeaseTtl;

    // ---- power and faults ----

    /// <summary>Whether the host has joined the lockspace of the VMs' leases since it was last powered on.</summary>
    public bool LockspaceJoined => Powered && _sim.Now >= _lockspaceJoinedAt;

    public void PowerOn(bool initial)
    {
        _lockspaceJoinedAt = initial ? TimeSpan.Zero : _sim.Now + Spec.LockspaceJoin;
        Powered = true;
        Frozen = false;
        MemberUp = true;
        if (!initial)
        {
            _sim.Log(Name, "powered on");
        }

        Daemon?.Start();
        StartAgent();
    }

    public void PowerOff(string why)
    {
        _resetPending = false;
        if (!Powered)
        {
            return;
        }

        _sim.Log(Name, $"powered off ({why}); {Processes.Count + Incoming.Count} VM process(es) gone");
        foreach (var process in Processes.Values.Concat(Incoming.Values))
        {
            process.Alive = false;
        }

        Processes.Clear();
        Incoming.Clear();
        Powered = false;
        Frozen = false;
        _deferredAgent.Clear();
        _deferredProcesses.Clear();
        _deferredDaemon.Clear();
        Daemon?.PowerOff();
        StopAgent();
    }

    /// <summary>The watchdog resets the machine: off at once, and booting again after <paramref name="reboot"/> unless powered off meanwhile.</summary>
    public void ResetByWatchdog(TimeSpan reboot)
    {
        PowerOff("reset by its watchdog");
        _resetPending = true;
        _sim.After(reboot, () =>
        {
            if (_resetPending && !Powered)
            {
                _resetPending = false;
                PowerOn(initial: false);
            }
        });
    }

    /// <summary>A timer of the fence daemon, held while the host is frozen.</summary>
    public void DeferDaemon(Action tick) => _deferredDaemon.Add(tick);

    public void Freeze() => Frozen = true;

    public void Thaw()
    {
        if (!Frozen)
        {
            return;
        }

        Frozen = false;
        var processes = _deferredProcesses.ToList();
        var daemon = _deferredDaemon.ToList();
        var agent = _deferredAgent.ToList();
        _deferredProcesses.Clear();
        _deferredDaemon.Clear();
        _deferredAgent.Clear();
        foreach (var resume in processes.Concat(daemon).Concat(agent))
        {
            resume();
        }
    }

    public void KillFenceDaemon() => Daemon?.Stop("killed");

    public void KillAgent()
    {
        _sim.Log(Name, $"agent killed; {Processes.Count} VM process(es) keep running");
        StopAgent();
    }

    private void StopAgent()
    {
        _agentUp = false;
        _agentEpoch++;
        LeaseId = null;
        LeaseLost = false;
        BelievedMaster = null;
        _engine = null;
        _masterFence = null;
        _fenced.Clear();
    }

    public void StartAgent()
    {
        _agentUp = true;
        _agentEpoch++;
        _adopted = false;
        _counter = 0;
        _lastBeatBegan = null;
        _beatFenced = false;
        _unsafeSince = null;
        _selfFenceGrace = new FenceGrace();
        Watch = new HeartbeatWatch();
        _world = new SimRecoveryWorld(_sim, this);
        _engine = new RecoveryEngine(_sim.Scenario.Timings, Clock, new SimLogger(_sim, Name));
        _masterFenceWorld = new SimMasterFenceWorld(_sim, this);
        _masterFence = new MasterFence(_sim.Scenario.Timings, Clock, new SimLogger(_sim, Name));
        Loop(TimeSpan.FromMilliseconds(500), Register, TimeSpan.Zero);
        var timings = _sim.Scenario.Timings;
        Loop(timings.SelfFenceCheck, SelfFenceRound, _sim.Jitter(timings.SelfFenceCheck));
        Loop(timings.HeartbeatInterval, HeartbeatRound, _sim.Jitter(timings.HeartbeatInterval));
        Loop(timings.ProbeInterval, WatchRound, _sim.Jitter(timings.ProbeInterval));
        Loop(timings.ProbeInterval, MasterFenceRound, _sim.Jitter(timings.ProbeInterval));
        Loop(CoordinatorTick, CampaignRound, _sim.Jitter(CoordinatorTick));
        Loop(CoordinatorTick, CoordinatorRound, _sim.Jitter(CoordinatorTick));
        Loop(TimeSpan.FromSeconds(1), SuperviseMember, _sim.Jitter(TimeSpan.FromSeconds(1)));
    }

    /// <summary>EtcdMemberSupervisor: the agent starts its etcd member again when the process has died.</summary>
    private void SuperviseMember()
    {
        if (!MemberUp && !MemberBroken)
        {
            MemberUp = true;
            _sim.Log(Name, "restarts its etcd member");
        }
    }

    /// <summary>A timer of the agent: stops with the agent, runs late on a frozen host.</summary>
    private void Loop(TimeSpan period, Action body, TimeSpan first)
    {
        Action? tick = null;
        tick = OfThisAgent(() =>
        {
            body();
            _sim.After(Clock.ToSimulation(period), tick!);
        });
        _sim.After(Clock.ToSimulation(first), tick);
    }

    /// <summary>A one-off action of the agent (a keepalive's ack arriving, a timeout): dropped if the agent died meanwhile.</summary>
    private void Later(TimeSpan delay, Action action) => _sim.After(delay, OfThisAgent(action));

    /// <summary>Work of this agent outside its timers (a live migration's half): it stops with the agent.</summary>
    public void AgentAfter(TimeSpan delay, Action action) => Later(delay, action);

    /// <summary>The action as this agent process runs it: never after the agent died, and late (at thaw) on a frozen host.</summary>
    private Action OfThisAgent(Action action)
    {
        var epoch = _agentEpoch;
        void Run()
        {
            if (epoch != _agentEpoch)
            {
                return;
            }

            if (Frozen)
            {
                _deferredAgent.Add(Run);
                return;
            }

            action();
        }

        return Run;
    }

    // ---- liveness: registration and the lease's keepalive (HostLiveness, EtcdLease) ----

    /// <summary>The pool starts with this host registered and holding its lease.</summary>
    public void Bootstrapped(long lease)
    {
        LeaseId = lease;
        SafeUntil = LeaseTiming.SafeUntil(Clock.UtcNow, Ttl, _sim.Scenario.Timings.LeaseSafetyMargin);
        HaEnabledView = _sim.Scenario.HaEnabled;
        _adopted = true;
        SendKeepAlive();
    }

    /// <summary>
    /// VmSupervisor.AdoptAsync finds a live migration's incoming QEMU like any other: the VM's process if the pool placed
    /// the VM here (the migration committed), else a copy that is not this host's to run.
    /// </summary>
    private void AdoptIncoming()
    {
        foreach (var (name, copy) in Incoming.ToList())
        {
            Incoming.Remove(name);
            if (copy.Alive && _sim.Etcd.Get(this, SimKeys.Vm(name)) == SimKeys.RunningOn(Name) && Processes.TryAdd(name, copy))
            {
                _sim.Log(Name, $"adopts copy {copy.Copy} of {name}");
            }
            else if (copy.Alive)
            {
                copy.Alive = false;
                _sim.Log(Name, $"kills incoming copy {copy.Copy} of {name}: the pool places it elsewhere");
            }
        }
    }

    /// <summary>The queued operations, resumed in order once this agent has adopted its VMs.</summary>
    private void ResumeOperations()
    {
        foreach (var resume in Operations.Values.ToList())
        {
            Later(_sim.Jitter(TimeSpan.FromMilliseconds(100)), resume);
        }
    }

    private void Register()
    {
        if (LeaseId is not null && !LeaseLost)
        {
            return;
        }

        try
        {
            LeaseId = null;
            var sent = Clock.UtcNow;
            var lease = _sim.Etcd.Grant(this, Ttl);
            _sim.Etcd.Put(this, SimKeys.Live(Name), Name, lease);
            var adopted = new List<string>();
            foreach (var vm in _sim.Vms.Values)
            {
                var state = _sim.Etcd.Get(this, SimKeys.Vm(vm.Spec.Name));
                if (state == SimKeys.RunningOn(Name))
                {
                    _sim.Etcd.Put(this, SimKeys.Owner(vm.Spec.Name), Name, lease);
                }
                else if (Processes.ContainsKey(vm.Spec.Name))
                {
                    adopted.Add(vm.Spec.Name);
                }
            }

            LeaseId = lease;
            LeaseLost = false;
            SafeUntil = LeaseTiming.SafeUntil(sent, Ttl, _sim.Scenario.Timings.LeaseSafetyMargin);
            _sim.Log(Name, $"live in the pool (lease {lease:x})");
            if (!_adopted)
            {
                // VmSupervisor.AdoptAsync, once per agent start: a QEMU the pool database does not place here is not this
                // host's to run; a VM placed here without a process stopped unasked and is handed to HA.
                _adopted = true;
                foreach (var name in adopted)
                {
                    _sim.Log(Name, $"kills copy {Processes[name].Copy} of {name}: the pool places it elsewhere");
                    Kill(name);
                }

                AdoptIncoming();

                foreach (var vm in _sim.Vms.Keys.Where(v => !Processes.ContainsKey(v)).ToList())
                {
                    _world!.RecordStopped(vm, restart: true, "its process is gone after the agent started");
                }

                ResumeOperations();
            }

            SendKeepAlive();
        }
        catch (SimUnavailableException)
        {
        }
    }

    private void SendKeepAlive()
    {
        if (LeaseId is not { } lease || LeaseLost)
        {
            return;
        }

        var sequence = ++_keepAliveSequence;
        _pendingKeepAlive = sequence;
        var sent = Clock.UtcNow;
        var epoch = _agentEpoch;
        var there = Latency();
        _sim.After(there, () =>
        {
            if (epoch != _agentEpoch || !KeepAliveReachesLeader())
            {
                return;
            }

            var ttl = _sim.Etcd.KeepAliveArrived(lease);
            var back = Latency();
            _sim.After(back, () =>
            {
                if (!KeepAliveReachesLeader())
                {
                    return;
                }

                Later(TimeSpan.Zero, () => KeepAliveAcked(sequence, lease, sent, ttl));
            });
        });
        Later(LeaseTiming.AckTimeout(Ttl, TimeSpan.FromSeconds(5)), () =>
        {
            if (_pendingKeepAlive == sequence && LeaseId == lease)
            {
                // No ack in time: the stream is dropped (a late ack is never read) and a new one opened after the
                // reconnect delay.
                _pendingKeepAlive = 0;
                CheckDeadline();
                Later(LeaseTiming.ReconnectDelay, SendKeepAlive);
            }
        });
    }

    private bool KeepAliveReachesLeader()
    {
        try
        {
            if (!Powered || !_agentUp)
            {
                return false;
            }

            _sim.Etcd.Reach(this, requireAgent: false);
            return true;
        }
        catch (SimUnavailableException)
        {
            return false;
        }
    }

    private TimeSpan Latency() => TimeSpan.FromMilliseconds(1) + _sim.Jitter(TimeSpan.FromMilliseconds(20)) + Spec.ExtraLatency;

    private void KeepAliveAcked(long sequence, long lease, DateTime sent, long ttlSeconds)
    {
        if (_pendingKeepAlive != sequence || LeaseId != lease)
        {
            return;
        }

        _pendingKeepAlive = 0;
        if (ttlSeconds <= 0)
        {
            _sim.Log(Name, $"lease {lease:x} has expired in etcd");
            LeaseLost = true;
            return;
        }

        SafeUntil = LeaseTiming.SafeUntil(sent, TimeSpan.FromSeconds(ttlSeconds), _sim.Scenario.Timings.LeaseSafetyMargin);
        CheckDeadline();
        if (!LeaseLost)
        {
            Later(Clock.ToSimulation(_sim.Scenario.Timings.KeepAliveInterval), SendKeepAlive);
        }
    }

    private void CheckDeadline()
    {
        if (LeaseId is not null && !LeaseLost && Clock.UtcNow >= SafeUntil)
        {
            _sim.Log(Name, $"lease {LeaseId:x} could not be renewed in time; lost");
            LeaseLost = true;
        }
    }

    // ---- the self-fence (SelfFence) ----

    private void SelfFenceRound()
    {
        // As the agent's SelfFence: a lease past its safe time is not safe, but only the keepalive loop declares it lost
        // (EtcdLease: when a keepalive goes unacknowledged past it, or etcd answers that it expired).
        var safe = LeaseSafe;
        var now = Clock.UtcNow;
        _unsafeSince = safe ? null : _unsafeSince ?? now;
        var timings = _sim.Scenario.Timings;
        if (Daemon is not null)
        {
            // FenceDaemonLink: report, and learn when the daemon's last write that landed began (a dead daemon says nothing).
            Daemon.Report(HaEnabledView, safe ? SafeUntil : null, LeaseId);
            if (Daemon.Running && Daemon.SinceBeatBegan is { } since)
            {
                _lastBeatBegan = now - since;
            }
        }

        var lands = SelfFencePolicy.HeartbeatLands(now - _lastBeatBegan, timings);
        var incoming = SelfFenceIgnoresIncoming ? [] : Incoming.Where(p => p.Value.Alive).Select(p => p.Key).ToList();
        var due = SelfFencePolicy.MustKill(HaEnabledView, safe, lands, now - (_unsafeSince ?? now), timings, Processes.Count + incoming.Count);
        if (_selfFenceGrace.Carry(due, LeaseId, now - Simulation.Epoch, timings))
        {
            _beatFenced = true;
            FenceKill("self-fence", safe
                ? "the fence fell due under an earlier lease, which expired"
                : $"lease not safe (safe until {(SafeUntil - Simulation.Epoch).TotalSeconds:0.000}) and {(lands ? "the isolation response" : "its storage heartbeat no longer lands")}");
        }

        if (_fenced.Count > 0 && safe)
        {
            RecordFenced();
        }
    }

    /// <summary>Every VM process of the host killed at once (SIGKILL), by the agent's self-fence or by the fence daemon.</summary>
    public void FenceKill(string who, string why)
    {
        var incoming = SelfFenceIgnoresIncoming ? [] : Incoming.Where(p => p.Value.Alive).Select(p => p.Key).ToList();
        if (Processes.Count + incoming.Count == 0)
        {
            return;
        }

        _sim.Log(Name, $"{who}: {why}; kills {string.Join(", ", Processes.Keys.Concat(incoming.Select(v => v + " (incoming)")))}");
        foreach (var name in Processes.Keys.ToList())
        {
            Kill(name);
            _fenced.Add(name);
        }

        // An incoming copy stays listed, dead, for its migration's half to find (it may have committed meanwhile).
        foreach (var name in incoming)
        {
            Incoming[name].Alive = false;
            _fenced.Add(name);
        }

        // The supervisor sees the processes exit and records them at once, if it can (usually it cannot yet); an agent
        // that is not running finds them gone when it starts.
        if (AgentRunning)
        {
            RecordFenced();
        }
    }

    private void RecordFenced()
    {
        foreach (var name in _fenced.ToList())
        {
            try
            {
                RecordStopped(name, fenced: true);
                _fenced.Remove(name);
            }
            catch (SimUnavailableException)
            {
                return;
            }
        }
    }

    /// <summary>
    /// VmSupervisor.MarkHaltedAsync: the VM recorded halted if the pool still places it here; a VM this host fenced or
    /// that crashed, if protected, is handed to HA to restart (<see cref="SimRecoveryWorld.RequestRestart"/>).
    /// </summary>
    private void RecordStopped(string vm, bool fenced)
    {
        _world!.RecordStopped(vm, restart: true, fenced ? "fenced by its host" : "crashed");
    }

    // ---- the storage heartbeat (StorageHeartbeat) ----

    private void HeartbeatRound()
    {
        try
        {
            HaEnabledView = _sim.Etcd.Get(this, SimKeys.HaEnabled) == "true";
        }
        catch (SimUnavailableException)
        {
            // The last view stands.
        }

        var now = Clock.UtcNow;
        if (LeaseSafe)
        {
            _beatFenced = false;
        }

        var lands = SelfFencePolicy.HeartbeatLands(now - _lastBeatBegan, _sim.Scenario.Timings);
        if (Daemon is null && SelfFencePolicy.MayBeat(HaEnabledView, true, LeaseSafe, _beatFenced, lands) && !StorageCut)
        {
            _sim.Statefile[Name] = ++_counter;
            _lastBeatBegan = now;
        }
    }

    /// <summary>StorageHeartbeat's watch: everyone's heartbeats read every probe interval.</summary>
    private void WatchRound()
    {
        if (HaEnabledView && !StorageCut)
        {
            var now = Clock.UtcNow - Simulation.Epoch;
            foreach (var (host, counter) in _sim.Statefile)
            {
                Watch.Observe(host, counter, now);
            }

            Watch.Scanned(now);
        }
    }

    /// <summary>MasterFenceWatch: a host that is not the master probes it and fences it when it is silent on both channels.</summary>
    private void MasterFenceRound()
    {
        if (_masterFence is null)
        {
            return;
        }

        try
        {
            var round = _masterFence.RunOnceAsync(_masterFenceWorld!, CancellationToken.None);
            if (!round.IsCompleted)
            {
                throw new InvalidOperationException("the simulated world completes every call synchronously; a round that did not is a simulation bug");
            }

            round.GetAwaiter().GetResult();
        }
        catch (SimUnavailableException)
        {
            // The pool database out of reach: the round is tried again at the next probe.
        }
    }

    // ---- master election and the master's recovery (MasterElection, HaCoordinator) ----

    private void CampaignRound()
    {
        if (LeaseId is not { } lease || LeaseLost)
        {
            return;
        }

        try
        {
            var master = _sim.Etcd.Get(this, SimKeys.Master);
            if (master is null && _sim.Etcd.TryClaim(this, SimKeys.Master, Name, lease))
            {
                _sim.Log(Name, "becomes pool master");
                master = Name;
            }

            BelievedMaster = master ?? BelievedMaster;
        }
        catch (SimUnavailableException)
        {
            // A master cut off keeps believing it is master: its writes are what cannot go through.
        }
    }

    private void CoordinatorRound()
    {
        if (BelievedMaster != Name || _engine is null)
        {
            return;
        }

        try
        {
            // As the agent's coordinator: rounds back to back while each moves a recovery on.
            for (var rounds = 0; rounds < RecoveryEngine.BackToBackRounds; rounds++)
            {
                var round = _engine.RunOnceAsync(_world!, CancellationToken.None);
                if (!round.IsCompleted)
                {
                    throw new InvalidOperationException("the simulated world completes every call synchronously; a round that did not is a simulation bug");
                }

                var progressed = round.GetAwaiter().GetResult();
                _roundFailing = false;
                if (!progressed)
                {
                    break;
                }
            }
        }
        catch (SimUnavailableException ex)
        {
            if (!_roundFailing)
            {
                _sim.Log(Name, $"HA round failed: {ex.Message}");
            }

            _roundFailing = true;
        }
        catch (SimConflictException ex)
        {
            _sim.Log(Name, $"HA round lost a race: {ex.Message}");
        }
    }

    // ---- VM processes ----

    public void StartInitial(SimVm vm)
    {
        _sim.Etcd.Put(this, SimKeys.Vm(vm.Spec.Name), SimKeys.RunningOn(Name));
        _sim.Etcd.Put(this, SimKeys.Owner(vm.Spec.Name), Name, LeaseId!.Value);
        StartProcess(vm);
        vm.MeantToRun = true;
    }

    public void StartProcess(SimVm vm)
    {
        var process = new SimProcess(vm, vm.NextCopy++, _sim.Now);
        Processes[vm.Spec.Name] = process;
        _sim.Log(Name, $"starts copy {process.Copy} of {vm.Spec.Name}");
        WriteWhileAlive(process);
    }

    /// <summary>A live migration's destination QEMU: it waits for the VM, and runs the guest (and writes) only once all of it arrived.</summary>
    public SimProcess StartIncoming(SimVm vm)
    {
        var process = new SimProcess(vm, vm.NextCopy++, _sim.Now) { RunsGuest = false };
        Incoming[vm.Spec.Name] = process;
        WriteWhileAlive(process);
        return process;
    }

    private void WriteWhileAlive(SimProcess process)
    {
        void Write()
        {
            if (!process.Alive)
            {
                return;
            }

            if (Frozen)
            {
                _deferredProcesses.Add(Write);
                return;
            }

            if (process.RunsGuest)
            {
                _sim.Invariants.DiskWrite(this, process);
            }

            _sim.After(WriteInterval, Write);
        }

        _sim.After(TimeSpan.Zero, Write);
    }

    public void Kill(string vm)
    {
        if (Processes.Remove(vm, out var process))
        {
            process.Alive = false;
        }
    }

    /// <summary>A process ended without the agent asking (crash, guest power-off): the supervisor records it.</summary>
    public void ProcessExited(SimProcess process, string why)
    {
        Kill(process.Vm.Spec.Name);
        _sim.Log(Name, $"copy {process.Copy} of {process.Vm.Spec.Name} {why}");
        if (!AgentRunning)
        {
            return;
        }

        try
        {
            _world!.RecordStopped(process.Vm.Spec.Name, restart: why == "crashed", why);
        }
        catch (SimUnavailableException)
        {
            _sim.Log(Name, $"could not record {process.Vm.Spec.Name} stopped: pool database unreachable");
        }
    }
}

/// <summary>The engine's log lines go into the trace, under the host that wrote them.</summary>
public sealed class SimLogger(Simulation sim, string host) : ILogger
{
    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (IsEnabled(logLevel))
        {
            sim.Log(host, formatter(state, exception));
        }
    }
}

/// <summary>The simulated pool database's keys, shaped like the agent's.</summary>
public static class SimKeys
{
    public const string HaEnabled = "/corral/pool/ha_enabled";
    public const string Master = "/corral/master";
    public const string Recoveries = PoolKeys.HaRecoveries;
    public const string Messages = "/corral/messages/";

    public static string Live(string host) => PoolKeys.Live + host;

    public static string Owner(string vm) => PoolKeys.VmOwner + vm;

    public static string Vm(string vm) => "/corral/objects/VM/" + vm;

    public static string HostEnabled(string host) => "/corral/objects/host/" + host + "/enabled";

    public static string RunningOn(string host) => "Running@" + host;

    public const string Halted = "Halted";
}
