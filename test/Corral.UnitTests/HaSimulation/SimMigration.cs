using Corral.Agent.Vms;
using Corral.Api.Migration;
using Corral.Hypervisor;

namespace Corral.UnitTests.HaSimulation;

/// <summary>What the source's QEMU reports of its outgoing migration (QMP query-migrate).</summary>
public enum SimStreamStatus
{
    Active,
    PreSwitchover,
    Device,
    Completed,
    Failed,
    Cancelled,
}

/// <summary>
/// One live migration over shared storage, as Corral's MigrationHandler runs it: the record in etcd
/// (<see cref="MigrationRecord"/>, the VM's migration lock, every write guarded by its revision), the destination's half
/// (<see cref="Receive"/>: incoming QEMU, switchover ack, commit, the source-liveness check), the source's half
/// (<see cref="Send"/>: stream, switchover, ack timeout, destination-liveness check, conclusion), and the source QEMU's
/// stream, which moves only while the two hosts can talk. The halves are the agents' (they stop with them and retry
/// while the pool database is unreachable); the stream and the copies are QEMU's.
/// </summary>
public sealed class SimMigration
{
    private static readonly TimeSpan Poll = MigrationPace.Poll;
    private static readonly TimeSpan FastPoll = MigrationPace.FastPoll;

    /// <summary>The next round of a half's loop right away: one etcd round trip later.</summary>
    private static readonly TimeSpan Next = TimeSpan.FromMilliseconds(1);
    private static readonly TimeSpan Retry = TimeSpan.FromMilliseconds(200);
    private static readonly TimeSpan Prepare = TimeSpan.FromMilliseconds(200);

    /// <summary>The memory goes in chunks of this long, 600 ms per 512 MiB; the last device state takes <see cref="Switchover"/>.</summary>
    private static readonly TimeSpan Chunk = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan Switchover = TimeSpan.FromMilliseconds(30);

    private readonly Simulation _sim;
    private readonly SimVm _vm;
    private readonly SimHost _source;
    private readonly SimHost _destination;
    private readonly string _id;
    private SimProcess? _sending;
    private SimProcess? _receiving;
    private int _chunksLeft;
    private string? _streamError;
    private bool _preparing;
    private SendRun _run;
    private DateTime _nextSourceCheck = DateTime.MinValue;
    private bool _received;
    private int _continues;

    private SimMigration(Simulation sim, SimVm vm, SimHost source, SimHost destination, string id)
    {
        _sim = sim;
        _vm = vm;
        _source = source;
        _destination = destination;
        _id = id;
        _run = new SendRun(source.Clock);
    }

    public SimStreamStatus? Status { get; private set; }

    private string Vm => _vm.Spec.Name;

    private string Key => MigrationRecord.KeyOf(Vm);

    private SimEtcd Etcd => _sim.Etcd;

    /// <summary>VM.pool_migrate: the record (the lock) created through <paramref name="via"/>, then both halves queued.</summary>
    public static void Begin(Simulation sim, SimHost via, SimVm vm, SimHost destination)
    {
        var name = vm.Spec.Name;
        var state = sim.Etcd.Get(via, SimKeys.Vm(name));
        if (state?.StartsWith("Running@", StringComparison.Ordinal) != true)
        {
            throw new Corral.HighAvailability.VmRestartException(["VM_BAD_POWER_STATE", name, "running", "halted"]);
        }

        var source = sim.Host(state["Running@".Length..]);
        if (source == destination)
        {
            throw new Corral.HighAvailability.VmRestartException(["HOST_CANNOT_ATTACH_NETWORK", "already there"]);
        }

        if (sim.Etcd.Get(via, SimKeys.Live(destination.Name)) is null)
        {
            throw new Corral.HighAvailability.VmRestartException(["HOST_OFFLINE", destination.Name]);
        }

        var id = $"m{sim.Now.TotalMilliseconds:0}";
        var record = new MigrationRecord
        {
            Id = id, VmRef = name, SourceRef = source.Name, DestinationRef = destination.Name, TaskRef = "task-" + id, CreatedUtc = Simulation.Epoch + sim.Now,
        };
        if (!sim.Etcd.TryClaim(via, record.Key, record.ToJson(), 0))
        {
            throw new Corral.HighAvailability.VmRestartException(["OTHER_OPERATION_IN_PROGRESS", "VM", name]);
        }

        sim.Log("xe", $"vm-migrate {name} host={destination.Name}: from {source.Name}");
        var migration = new SimMigration(sim, vm, source, destination, id);

        // Each agent picks its half from its operation queue; the queue is persisted, so a restarted agent resumes it.
        source.Operations[migration.SendOperation] = migration.ResumeSend;
        destination.Operations[migration.ReceiveOperation] = migration.ResumeReceive;
        source.AgentAfter(sim.Jitter(TimeSpan.FromMilliseconds(100)), migration.Send);
        destination.AgentAfter(sim.Jitter(TimeSpan.FromMilliseconds(100)), migration.Receive);
    }

    private string SendOperation => _id + ":send";

    private string ReceiveOperation => _id + ":receive";

    /// <summary>A new agent's run of the source's half: what the last run knew beyond the record is gone (SendRun).</summary>
    private void ResumeSend()
    {
        _run = new SendRun(_source.Clock);
        _sim.Log(_source.Name, $"resumes sending {Vm}");
        Send();
    }

    /// <summary>A new agent's run of the destination's half.</summary>
    private void ResumeReceive()
    {
        _received = false;
        _preparing = false;
        _nextSourceCheck = DateTime.MinValue;
        _sim.Log(_destination.Name, $"resumes receiving {Vm}");
        Receive();
    }

    private (MigrationRecord Record, long Revision)? Read(SimHost caller)
    {
        var (json, revision) = Etcd.GetWithRevision(caller, Key);
        return json is not null && MigrationRecord.FromJson(json) is { } record && record.Id == _id ? (record, revision) : null;
    }

    private bool TryAdvance(SimHost caller, MigrationRecord next, long revision) => Etcd.Txn(caller, [(Key, revision)], [(Key, next.ToJson(), 0)]);

    private void Abort(SimHost caller, MigrationRecord record, long revision, string error)
    {
        _sim.Log(caller.Name, $"migration of {Vm} aborted: {error}");
        TryAdvance(caller, record with { State = MigrationStates.Aborting, Error = error }, revision);
    }

    private bool HostIsLive(SimHost caller, SimHost host) => Etcd.Get(caller, SimKeys.Live(host.Name)) is not null;

    /// <summary>The destination's look at the source's liveness, once a second at most: true once the source is gone.</summary>
    private bool SourceGone()
    {
        var d = _destination;
        if (d.Clock.UtcNow < _nextSourceCheck)
        {
            return false;
        }

        _nextSourceCheck = d.Clock.UtcNow + MigrationPace.SourceCheck;
        return !HostIsLive(d, _source);
    }

    /// <summary>
    /// The decision (TryCommitAsync), guarded by the record's and the VM's revisions: the record completed, the VM
    /// resident on the destination, its ownership claim on the destination's lease; without the claim if that lease
    /// is gone (the VM runs there as far as QEMU goes).
    /// </summary>
    private void TryCommit(SimHost caller, MigrationRecord record, long revision)
    {
        var (_, vmRevision) = Etcd.GetWithRevision(caller, SimKeys.Vm(Vm));
        var claimed = Etcd.LeaseExists(record.DestinationLease);
        var writes = new List<(string, string?, long)>
        {
            (Key, (record with { State = MigrationStates.Completed }).ToJson(), 0),
            (SimKeys.Vm(Vm), SimKeys.RunningOn(_destination.Name), 0),
        };
        if (claimed)
        {
            writes.Add((SimKeys.Owner(Vm), _destination.Name, record.DestinationLease));
        }

        if (Etcd.Txn(caller, [(Key, revision), (SimKeys.Vm(Vm), vmRevision)], writes))
        {
            _sim.Log(caller.Name, $"commits the migration of {Vm}: it runs on {_destination.Name}{(claimed ? "" : " (unclaimed: the destination's lease is gone)")}");
        }
    }

    // ---- destination (ReceiveAsync) ----

    private void Receive()
    {
        var d = _destination;
        void Again(TimeSpan delay) => d.AgentAfter(d.Clock.ToSimulation(delay), Receive);
        try
        {
            if (Read(d) is not { } found)
            {
                if (!_received)
                {
                    FinishReceive();
                }

                d.Operations.Remove(ReceiveOperation);
                return;
            }

            var (record, revision) = found;
            var process = d.Incoming.GetValueOrDefault(Vm);
            var copyAlive = process is { Alive: true };
            var sourceGone = ReceiveSteps.AsksAboutSource(record.State, _received, copyAlive) && SourceGone();
            var runsGuest = ReceiveSteps.AsksWhetherRunning(record.State, copyAlive) && process!.RunsGuest;
            switch (ReceiveSteps.Next(record.State, _received, copyAlive, sourceGone, runsGuest))
            {
                case ReceiveStep.Prepare:
                    PrepareIncoming(record, revision);
                    return;
                case ReceiveStep.Finish:
                    FinishReceive();
                    _received = true;
                    Again(Next);
                    return;
                case ReceiveStep.EndForGoneSource:
                    // The source ends the migration; if it died before that, the destination does (EndForGoneSourceAsync).
                    if (Etcd.Txn(d, [(Key, revision)], [(Key, null, 0)]))
                    {
                        _sim.Log(d.Name, $"migration of {Vm}: the source host is no longer live; the destination ended the migration");
                    }

                    Again(Next);
                    return;
                case ReceiveStep.WaitForSource:
                    Again(Poll);
                    return;
                case ReceiveStep.Discard:
                    DiscardIncoming();
                    d.Operations.Remove(ReceiveOperation);
                    return;
                case ReceiveStep.AbortCopyGone:
                    Abort(d, record, revision, "the destination's QEMU process is gone");
                    Again(Next);
                    return;
                case ReceiveStep.Commit:
                    TryCommit(d, record, revision);
                    Again(Next);
                    return;
                case ReceiveStep.DiscardSourceGone:
                    _sim.Log(d.Name, $"migration of {Vm}: the source host is no longer live; discarding the incoming copy");
                    DiscardIncoming();
                    Abort(d, record, revision, "the source host is no longer live");
                    Again(Next);
                    return;
                case ReceiveStep.Acknowledge:
                    if (TryAdvance(d, record with { State = MigrationStates.SwitchAcknowledged }, revision))
                    {
                        _sim.Log(d.Name, $"acknowledges the switchover of {Vm}");
                    }

                    Again(Next);
                    return;
                default:
                    Again(ReceiveSteps.NearSwitchover(record.State) ? FastPoll : Poll);
                    return;
            }
        }
        catch (SimUnavailableException)
        {
            Again(Retry);
        }
    }

    /// <summary>The incoming QEMU (not running the guest) takes a while to start; then the record says ready, on this host's lease.</summary>
    private void PrepareIncoming(MigrationRecord record, long revision)
    {
        var d = _destination;
        if (_preparing)
        {
            return;
        }

        _preparing = true;
        d.AgentAfter(d.Clock.ToSimulation(Prepare), () =>
        {
            _preparing = false;
            try
            {
                if (d.LeaseId is not { } lease)
                {
                    throw new SimUnavailableException($"{d.Name} holds no lease");
                }

                DiscardIncoming();
                _receiving = d.StartIncoming(_vm);
                if (TryAdvance(d, record with { State = MigrationStates.Ready, DestinationLease = lease }, revision))
                {
                    _sim.Log(d.Name, $"waits for {Vm} (incoming copy {_receiving.Copy})");
                }

                d.AgentAfter(Next, Receive);
            }
            catch (SimUnavailableException)
            {
                d.AgentAfter(Retry, Receive);
            }
        });
    }

    /// <summary>
    /// The migration is over (FinishReceiveAsync): the incoming copy becomes this host's VM if the pool places the VM
    /// here, else it goes. One the self-fence killed meanwhile is a VM nobody asked to stop: recorded halted, for HA.
    /// </summary>
    private void FinishReceive()
    {
        var d = _destination;
        var state = Etcd.Get(d, SimKeys.Vm(Vm));
        var incoming = d.Incoming.GetValueOrDefault(Vm);
        if (state != SimKeys.RunningOn(d.Name) || (incoming ?? d.Processes.GetValueOrDefault(Vm)) is null)
        {
            DiscardIncoming();
            return;
        }

        if (incoming is null)
        {
            return;
        }

        d.Incoming.Remove(Vm);
        if (!incoming.Alive)
        {
            _sim.Log(d.Name, $"{Vm} reached this host but its incoming copy {incoming.Copy} is gone");
            d.World.RecordStopped(Vm, restart: true, "its incoming copy was killed");
            return;
        }

        if (d.Processes.TryAdd(Vm, incoming))
        {
            _sim.Log(d.Name, $"{Vm} now runs here (copy {incoming.Copy})");
        }
    }

    private void DiscardIncoming()
    {
        if (_destination.Incoming.Remove(Vm, out var process))
        {
            process.Alive = false;
            _sim.Log(_destination.Name, $"discards incoming copy {process.Copy} of {Vm}");
        }
    }

    // ---- source (SendAsync, ConcludeAsync) ----

    private void Send()
    {
        var s = _source;
        void Again(TimeSpan? delay) => s.AgentAfter(delay is { } d ? s.Clock.ToSimulation(d) : Next, Send);
        try
        {
            var found = Read(s);
            var (record, revision) = found is { } f ? (f.Record, f.Revision) : (null, 0L);
            var step = _run.Next(record, s.Processes.ContainsKey(Vm), mirrorsCaughtUp: false);
            switch (step)
            {
                case SendStep.Conclude:
                    Conclude(record);
                    return;
                case SendStep.AbortNotReady:
                    Abort(s, record!, revision, "the destination did not get ready");
                    break;
                case SendStep.StartMigration:
                    if (TryAdvance(s, record! with { State = MigrationStates.Migrating }, revision))
                    {
                        StartStream();
                        _run.Started = true;
                    }

                    break;
                case SendStep.AbortSourceCopyGone:
                    Abort(s, record!, revision, "the source's QEMU process is gone");
                    break;
                case SendStep.FollowQemu:
                    Again(MigrationPace.After(Follow(record!, revision)));
                    return;
                case SendStep.StartMirrors or SendStep.AbortMirrorsLost or SendStep.WaitForMirrors:
                    throw new InvalidOperationException($"the simulation moves no local disks ({step})");
            }

            Again(MigrationPace.After(step));
        }
        catch (SimUnavailableException)
        {
            Again(Retry);
        }
    }

    /// <summary>What QEMU's query-migrate says, and the step Corral's source takes on it (FollowQemuAsync).</summary>
    private SourceStep Follow(MigrationRecord record, long revision)
    {
        var s = _source;
        var step = _run.Follow(record, QueryMigrate);
        if (SwitchoverSteps.AsksAboutDestination(step))
        {
            step = SwitchoverSteps.GivenDestination(step, HostIsLive(s, _destination));
        }

        switch (step)
        {
            case SourceStep.Commit:
                TryCommit(s, record, revision);
                break;
            case SourceStep.Abort or SourceStep.AbortNotStarted:
                Abort(s, record, revision, _streamError ?? $"QEMU reported the migration {Status?.ToString().ToLowerInvariant() ?? "never started"}");
                break;
            case SourceStep.AskAcknowledgement:
                if (TryAdvance(s, record with { State = MigrationStates.Switching }, revision))
                {
                    _sim.Log(s.Name, $"asks {_destination.Name} to acknowledge the switchover of {Vm}");
                }

                break;
            case SourceStep.Release:
                if (TryAdvance(s, record with { SwitchoverReleasedUtc = s.Clock.UtcNow }, revision))
                {
                    _sim.Log(s.Name, $"releases the switchover of {Vm}");
                    ContinueStream();
                }

                break;
            case SourceStep.CancelUnacknowledged:
                CancelStream();
                Abort(s, record, revision, "the destination's agent did not acknowledge the switchover");
                break;
            case SourceStep.CancelGoAheadLost:
                CancelStream();
                Abort(s, record, revision, "QEMU did not act on the go-ahead for the switchover");
                break;
            case SourceStep.CancelDestinationGone:
                CancelStream();
                Abort(s, record, revision, "the destination host is no longer live");
                break;
        }

        return step;
    }

    /// <summary>The source QEMU's <c>query-migrate</c> (its "device" state reads as active).</summary>
    private MigrationStatus QueryMigrate => Status switch
    {
        null => MigrationStatus.None,
        SimStreamStatus.PreSwitchover => MigrationStatus.PreSwitchover,
        SimStreamStatus.Completed => MigrationStatus.Completed,
        SimStreamStatus.Failed => MigrationStatus.Failed,
        SimStreamStatus.Cancelled => MigrationStatus.Cancelled,
        _ => MigrationStatus.Active,
    };

    /// <summary>
    /// The VM moved if the pool no longer places it here: this host's copy is settled as <see cref="ConclusionSteps"/>
    /// says (the real handler's SettleCopyAsync); the record (the lock) goes last.
    /// </summary>
    private void Conclude(MigrationRecord? record)
    {
        var s = _source;
        var moved = Etcd.Get(s, SimKeys.Vm(Vm)) != SimKeys.RunningOn(s.Name);
        var copy = s.Processes.GetValueOrDefault(Vm);
        switch (ConclusionSteps.Next(moved, copy is not null, copy is not null && copy == _sending ? QueryMigrate : MigrationStatus.None))
        {
            case ConclusionStep.KillStaleCopy:
                s.Kill(Vm);
                _sim.Log(s.Name, $"kills its paused copy {copy!.Copy} of {Vm}");
                break;
            case ConclusionStep.CancelMigration:
                _sim.Log(s.Name, $"cancels QEMU's migration of {Vm} ({Status?.ToString().ToLowerInvariant()}): it was aborted without it");
                CancelStream();
                break;
        }

        Etcd.Delete(s, Key);
        s.Operations.Remove(SendOperation);
        _sim.Log(s.Name, moved ? $"{Vm} migrated" : $"migration of {Vm} failed: {(record?.Error is { Length: > 0 } error ? error : "the migration was abandoned")}");
    }

    // ---- the source QEMU's stream ----

    private void StartStream()
    {
        _sending = _source.Processes[Vm];
        _receiving = _destination.Incoming.GetValueOrDefault(Vm);
        _chunksLeft = (int)Math.Max(1, Math.Ceiling(_vm.Spec.Memory / 512.0 * 6));
        Status = SimStreamStatus.Active;
        _sim.Log(_source.Name, $"sends {Vm} to {_destination.Name}");
        _sim.After(Chunk, StreamChunk);
    }

    /// <summary>
    /// Whether the stream can move now: both QEMUs there and the hosts talking (a host that lost power or a cut link
    /// leaves TCP waiting; a QEMU killed on a host that is up resets the connection and fails the migration).
    /// </summary>
    private bool StreamMoves()
    {
        var talking = _sim.Connected(_source.Name, _destination.Name);
        if (_sending is not { Alive: true })
        {
            // The source's QEMU is gone: a host that is up resets the connection and the incoming QEMU exits; a host
            // without power leaves it waiting.
            if (_source.Powered && talking && _receiving is { Alive: true, RunsGuest: false })
            {
                _receiving.Alive = false;
                Status = SimStreamStatus.Failed;
            }

            return false;
        }

        if (_receiving is not { Alive: true })
        {
            if (_receiving is null || (_destination.Powered && talking))
            {
                Status = SimStreamStatus.Failed;
                _streamError = "the destination's QEMU closed the connection";
            }

            return false;
        }

        return talking && _source.Powered && _destination.Powered && !_source.Frozen && !_destination.Frozen;
    }

    private void StreamChunk()
    {
        if (Status != SimStreamStatus.Active)
        {
            return;
        }

        if (StreamMoves() && --_chunksLeft == 0)
        {
            // Pre-switchover: QEMU stops the guest here and waits to be told to continue.
            Status = SimStreamStatus.PreSwitchover;
            _sending!.RunsGuest = false;
            _sim.Log(_source.Name, $"pauses copy {_sending.Copy} of {Vm}: all but the last device state sent");
            return;
        }

        _sim.After(Chunk, StreamChunk);
    }

    /// <summary>
    /// <c>migrate-continue</c>: QEMU's migration thread leaves pre-switchover once it runs, the source host's
    /// <see cref="HostSpec.ContinueLag"/> later; until then QEMU still says pre-switchover (and takes a second one
    /// without harm, which the invariants still count). A cancel meanwhile wins: nothing more is sent.
    /// </summary>
    private void ContinueStream()
    {
        _sim.Invariants.MigrateContinue(Vm, _id, ++_continues);
        if (Status == SimStreamStatus.PreSwitchover)
        {
            _sim.After(_source.Spec.ContinueLag, () =>
            {
                if (Status == SimStreamStatus.PreSwitchover)
                {
                    Status = SimStreamStatus.Device;
                    _sim.After(Switchover, FinalState);
                }
            });
        }
    }

    /// <summary>The last device state arrives: the destination's QEMU runs the guest, the source's reports completed.</summary>
    private void FinalState()
    {
        if (Status != SimStreamStatus.Device)
        {
            return;
        }

        if (!StreamMoves())
        {
            if (Status == SimStreamStatus.Device)
            {
                _sim.After(Chunk, FinalState);
            }

            return;
        }

        Status = SimStreamStatus.Completed;
        _receiving!.RunsGuest = true;
        _sim.Log(_destination.Name, $"copy {_receiving.Copy} of {Vm} runs: the whole VM arrived");
    }

    /// <summary>migrate_cancel: the stream stops and the source's guest runs on (nothing to cancel once completed).</summary>
    private void CancelStream()
    {
        if (Status is SimStreamStatus.Active or SimStreamStatus.PreSwitchover or SimStreamStatus.Device)
        {
            Status = SimStreamStatus.Cancelled;
            if (_sending is { Alive: true, RunsGuest: false })
            {
                _sending.RunsGuest = true;
                _sim.Log(_source.Name, $"resumes copy {_sending.Copy} of {Vm}");
            }
        }
    }
}
