using System.Globalization;
using Corral.HighAvailability;

namespace Corral.UnitTests.HaSimulation;

/// <summary>
/// A pool of simulated hosts on one simulated clock: a discrete-event loop (one queue of timed actions, ties broken by
/// the order they were scheduled), so that a run is a pure function of its scenario and seed. The hosts run Corral's
/// own HA decisions (<see cref="RecoveryEngine"/>, <see cref="SelfFencePolicy"/>, <see cref="HeartbeatWatch"/>, the
/// lease timing of <see cref="Corral.PoolDatabase.LeaseTiming"/>) over <see cref="SimEtcd"/>, an in-memory store with
/// etcd's lease semantics. After every event the invariants are checked (<see cref="Invariants"/>).
/// </summary>
public sealed class Simulation
{
    public static readonly DateTime Epoch = new(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);

    private readonly PriorityQueue<Action, (long Ticks, long Sequence)> _queue = new();
    private long _sequence;

    public Simulation(Scenario scenario, int seed)
    {
        Scenario = scenario;
        Seed = seed;
        Random = new Random(seed);
        Etcd = new SimEtcd(this);
        Invariants = new Invariants(this);
        foreach (var spec in scenario.Hosts)
        {
            Hosts.Add(new SimHost(this, spec));
        }

        foreach (var spec in scenario.Vms)
        {
            Vms.Add(spec.Name, new SimVm(spec));
        }
    }

    public Scenario Scenario { get; }

    public int Seed { get; }

    public Random Random { get; }

    public TimeSpan Now { get; private set; }

    public SimEtcd Etcd { get; }

    public Invariants Invariants { get; }

    public List<SimHost> Hosts { get; } = [];

    public SortedDictionary<string, SimVm> Vms { get; } = new(StringComparer.Ordinal);

    /// <summary>Heartbeat counters in the statefile on the shared heartbeat SR, by host.</summary>
    public SortedDictionary<string, long> Statefile { get; } = new(StringComparer.Ordinal);

    /// <summary>Network links cut (both directions), as host name pairs in ordinal order.</summary>
    public HashSet<(string, string)> CutLinks { get; } = [];

    public List<string> Trace { get; } = [];

    public SimHost Host(string name) => Hosts.FirstOrDefault(h => h.Name == name) ?? throw new ScenarioException($"no host {name}");

    public SimVm Vm(string name) => Vms.TryGetValue(name, out var vm) ? vm : throw new ScenarioException($"no VM {name}");

    public bool Connected(string a, string b) => a == b || !CutLinks.Contains(Pair(a, b));

    /// <summary>Whether etcd's traffic passes between the two hosts: connected, and neither has etcd's ports blocked.</summary>
    public bool EtcdConnected(string a, string b) => a == b || (Connected(a, b) && !Host(a).EtcdCut && !Host(b).EtcdCut);

    public static (string, string) Pair(string a, string b) => string.CompareOrdinal(a, b) < 0 ? (a, b) : (b, a);

    /// <summary>A jitter in [0, max), zero for seed 0 so that seed 0 is the canonical run the golden trace records.</summary>
    public TimeSpan Jitter(TimeSpan max) => Seed == 0 ? TimeSpan.Zero : TimeSpan.FromTicks((long)(Random.NextDouble() * max.Ticks));

    public void At(TimeSpan time, Action action) => _queue.Enqueue(action, (Math.Max(time.Ticks, Now.Ticks), _sequence++));

    public void After(TimeSpan delay, Action action) => At(Now + delay, action);

    public void Log(string who, string text) => Trace.Add(string.Create(CultureInfo.InvariantCulture, $"{Now.TotalSeconds,8:0.000} {who,-6} {text}"));

    public void Run()
    {
        foreach (var host in Hosts)
        {
            host.PowerOn(initial: true);
        }

        // The pool starts settled: the first host etcd leader and master, every host registered.
        foreach (var host in Hosts)
        {
            Etcd.Bootstrap(host);
        }

        Etcd.Start();

        foreach (var vm in Vms.Values.Where(v => v.Spec.On is not null))
        {
            Host(vm.Spec.On!).StartInitial(vm);
        }

        foreach (var step in Scenario.Steps)
        {
            At(step.At, () => Apply(step));
        }

        while (_queue.TryPeek(out _, out var when) && when.Ticks <= Scenario.Duration.Ticks)
        {
            var action = _queue.Dequeue();
            Now = TimeSpan.FromTicks(when.Ticks);
            action();
            Invariants.CheckStep();
        }

        Now = Scenario.Duration;
        Invariants.CheckEnd();
    }

    private void Apply(ScenarioStep step)
    {
        Log("fault", step.Text);
        var target = step.Arguments.Count > 0 && Hosts.Any(h => h.Name == step.Arguments[0]) ? Host(step.Arguments[0]) : null;
        switch (step.Verb)
        {
            case "pull-plug":
                Required(target).PowerOff("plug pulled");
                break;
            case "power-on":
                Required(target).PowerOn(initial: false);
                break;
            case "freeze":
                Required(target).Freeze();
                break;
            case "thaw":
                Required(target).Thaw();
                break;
            case "partition":
                foreach (var other in Hosts.Where(h => h != target))
                {
                    CutLinks.Add(Pair(Required(target).Name, other.Name));
                }

                break;
            case "cut":
                CutLinks.Add(Pair(step.Arguments[0], step.Arguments[1]));
                break;
            case "heal":
                if (target is null)
                {
                    CutLinks.Clear();
                }
                else
                {
                    CutLinks.RemoveWhere(l => l.Item1 == target.Name || l.Item2 == target.Name);
                }

                break;
            case "cut-etcd":
                Required(target).EtcdCut = true;
                break;
            case "restore-etcd":
                Required(target).EtcdCut = false;
                break;
            case "cut-storage":
                Required(target).StorageCut = true;
                break;
            case "restore-storage":
                Required(target).StorageCut = false;
                break;
            case "kill-etcd":
                Required(target).MemberUp = false;
                break;
            case "break-etcd":
                Required(target).MemberUp = false;
                Required(target).MemberBroken = true;
                break;
            case "start-etcd":
                Required(target).MemberBroken = false;
                Required(target).MemberUp = true;
                break;
            case "kill-agent":
                Required(target).KillAgent();
                break;
            case "start-agent":
                Required(target).StartAgent();
                break;
            case "kill-fenced":
                Required(target).KillFenceDaemon();
                break;
            case "crash-vm":
                CrashVm(Vm(step.Arguments[0]));
                break;
            case "command":
                Commands.Run(this, step.Arguments);
                break;
            default:
                throw new ScenarioException($"line {step.Line}: unknown step '{step.Verb}'");
        }
    }

    private static SimHost Required(SimHost? host) => host ?? throw new ScenarioException("this step needs a host name");

    /// <summary>The guest or QEMU dies on its own (not Corral's doing): the host's supervisor sees the process exit.</summary>
    private void CrashVm(SimVm vm)
    {
        foreach (var host in Hosts)
        {
            if (host.Processes.TryGetValue(vm.Spec.Name, out var process) && host.Powered && !host.Frozen)
            {
                host.ProcessExited(process, "crashed");
            }
        }
    }
}

public sealed class ScenarioException(string message) : Exception(message);

/// <summary>The store's view is unreachable from this host: no member it can reach has a leader with quorum.</summary>
public sealed class SimUnavailableException(string message) : Exception(message);

/// <summary>A VM: its configuration (in the pool database, changed by commands) and its disk's write history.</summary>
public sealed class SimVm(VmSpec spec)
{
    public VmSpec Spec { get; } = spec;

    public string Priority { get; set; } = spec.Priority;

    public long Order { get; set; } = spec.Order;

    public long StartDelay { get; set; } = spec.StartDelay;

    /// <summary>Copies are numbered as they start; the disk remembers the newest copy that wrote.</summary>
    public int NextCopy { get; set; } = 1;

    public int NewestWriter { get; set; }

    public long Writes { get; set; }

    /// <summary>When the VM last stopped having a running copy while it was meant to run; null while it runs or is meant to be off.</summary>
    public TimeSpan? DownSince { get; set; }

    /// <summary>The operator shut it down (or never started it): HA owes it nothing.</summary>
    public bool MeantToRun { get; set; }

    public TimeSpan? LongestOutage { get; set; }
}

/// <summary>One QEMU process of a VM on a host. It writes to the VM's disk every 100 ms while it runs.</summary>
public sealed class SimProcess(SimVm vm, int copy, TimeSpan started)
{
    public SimVm Vm { get; } = vm;

    public int Copy { get; } = copy;

    public TimeSpan Started { get; } = started;

    public bool Alive { get; set; } = true;

    /// <summary>The guest runs in it: false for a live migration's incoming copy until all of the VM arrived, and for the source's copy paused at the switchover.</summary>
    public bool RunsGuest { get; set; } = true;
}
