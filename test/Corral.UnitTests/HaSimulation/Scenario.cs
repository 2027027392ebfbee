using System.Globalization;
using Corral.HighAvailability;

namespace Corral.UnitTests.HaSimulation;

public sealed record HostSpec(string Name)
{
    /// <summary>Memory for VMs, in MiB.</summary>
    public long Memory { get; init; } = 4096;

    /// <summary>The fence agent: "" none, "lab" (the lab's power switch, always works), "broken" (configured, fails).</summary>
    public string Fence { get; init; } = "";

    public double ClockRate { get; init; } = 1.0;

    /// <summary>Added to each message to and from this host (a slow network).</summary>
    public TimeSpan ExtraLatency { get; init; }

    /// <summary>
    /// How long a QEMU on this host takes to act on <c>migrate-continue</c>: its migration thread leaves
    /// pre-switchover only once it is scheduled, which on a host whose CPUs its guests keep busy takes a while.
    /// </summary>
    public TimeSpan ContinueLag { get; init; }

    /// <summary>
    /// How long this host takes, after each power-on, to join the lockspace of the VMs' leases (sanlock: 2-3 × its I/O
    /// timeout); until then HA's placement prefers other hosts. Zero: at once. The hosts of a scenario's start have joined.
    /// </summary>
    public TimeSpan LockspaceJoin { get; init; }
}

public sealed record VmSpec(string Name)
{
    public long Memory { get; init; } = 512;

    /// <summary>Where it runs when the scenario starts; null: halted.</summary>
    public string? On { get; init; }

    public string Priority { get; init; } = RestartPriority.Restart;

    public long Order { get; init; }

    public long StartDelay { get; init; }

    /// <summary>Its disk is on this host's local SR; null: on shared storage.</summary>
    public string? LocalTo { get; init; }
}

/// <summary>One timed step: a fault (pull-plug, freeze, partition, ...) or an operator's command.</summary>
public sealed record ScenarioStep(TimeSpan At, string Verb, IReadOnlyList<string> Arguments, string Text, int Line);

/// <summary>An expectation on the outcome, checked at the end of the run.</summary>
public sealed record Expectation(string Kind, IReadOnlyList<string> Arguments, int Line);

/// <summary>
/// A scenario file: the pool (hosts, VMs, HA settings), a timeline of faults and commands, how long to run, and the
/// expected outcome. The format is line-based; <c>#</c> starts a comment. See Scenarios/README.md.
/// </summary>
public sealed class Scenario
{
    public required string Name { get; init; }

    public string Description { get; private set; } = "";

    public List<HostSpec> Hosts { get; } = [];

    public List<VmSpec> Vms { get; } = [];

    public List<ScenarioStep> Steps { get; } = [];

    public List<Expectation> Expectations { get; } = [];

    public bool HaEnabled { get; private set; } = true;

    /// <summary>
    /// Agents fail over to the other etcd members' client URLs, as Corral's do (<c>client local</c>: only their own
    /// member, as before that change, to show what the failover buys).
    /// </summary>
    public bool ClientFailover { get; private set; } = true;

    /// <summary>The agent's self-fence as it was before it killed live migrations' incoming copies too.</summary>
    public bool LegacySelfFenceIgnoresIncoming { get; private set; }

    /// <summary>
    /// Whether each host runs a fence daemon with a watchdog (the default, as the lab and a package run it); <c>fence-daemon
    /// off</c>: the agent writes the heartbeat itself and no watchdog resets the host (an agent without corral-fenced).
    /// </summary>
    public bool FenceDaemon { get; private set; } = true;

    public HaTimings Timings { get; private set; } = new();

    /// <summary>A protected VM meant to run must have a running copy again within this long of losing it.</summary>
    public TimeSpan Bound { get; private set; } = TimeSpan.FromSeconds(20);

    public int Seeds { get; private set; } = 8;

    public TimeSpan Duration { get; private set; } = TimeSpan.FromSeconds(60);

    public static Scenario Parse(string name, string text)
    {
        var scenario = new Scenario { Name = name };
        var lineNumber = 0;
        foreach (var rawLine in text.Split('\n'))
        {
            lineNumber++;
            var line = rawLine.Trim();
            if (line.StartsWith('#'))
            {
                if (scenario.Description.Length == 0)
                {
                    scenario.Description = line.TrimStart('#').Trim();
                }

                continue;
            }

            var hash = line.IndexOf(" #", StringComparison.Ordinal);
            if (hash >= 0)
            {
                line = line[..hash].Trim();
            }

            if (line.Length == 0)
            {
                continue;
            }

            try
            {
                scenario.ParseLine(Words(line), line, lineNumber);
            }
            catch (Exception ex) when (ex is FormatException or IndexOutOfRangeException or ArgumentException or KeyNotFoundException)
            {
                throw new ScenarioException($"{name}:{lineNumber}: {ex.Message} in '{line}'");
            }
        }

        scenario.Validate();
        // The agent's own check of the timing budget (HaOptionsValidation): a scenario cannot run an unsafe one.
        if (scenario.Timings.Problems() is [var first, ..])
        {
            throw new ScenarioException($"{name}: {first}");
        }

        return scenario;
    }

    private static List<string> Words(string line)
    {
        var words = new List<string>();
        var i = 0;
        while (i < line.Length)
        {
            if (line[i] == ' ')
            {
                i++;
            }
            else if (line[i] == '"')
            {
                var end = line.IndexOf('"', i + 1);
                if (end < 0)
                {
                    throw new FormatException("unterminated quote");
                }

                words.Add(line[(i + 1)..end]);
                i = end + 1;
            }
            else
            {
                var end = line.IndexOf(' ', i);
                end = end < 0 ? line.Length : end;
                words.Add(line[i..end]);
                i = end;
            }
        }

        return words;
    }

    private static Dictionary<string, string> Options(IEnumerable<string> words) =>
        words.Select(w => w.Split('=', 2)).ToDictionary(p => p[0], p => p.Length > 1 ? p[1] : "", StringComparer.Ordinal);

    private static TimeSpan Seconds(string value) => TimeSpan.FromSeconds(double.Parse(value, CultureInfo.InvariantCulture));

    private void ParseLine(List<string> w, string line, int lineNumber)
    {
        switch (w[0])
        {
            case "hosts":
                Hosts.AddRange(w.Skip(1).Select(n => new HostSpec(n)));
                break;
            case "host":
            {
                var index = Hosts.FindIndex(h => h.Name == w[1]);
                if (index < 0)
                {
                    throw new ArgumentException($"host {w[1]} not declared by 'hosts'");
                }

                var host = Hosts[index];
                foreach (var (key, value) in Options(w.Skip(2)))
                {
                    host = key switch
                    {
                        "memory" => host with { Memory = long.Parse(value, CultureInfo.InvariantCulture) },
                        "fence" => host with { Fence = value },
                        "clock" => host with { ClockRate = double.Parse(value, CultureInfo.InvariantCulture) },
                        "latency" => host with { ExtraLatency = TimeSpan.FromMilliseconds(double.Parse(value, CultureInfo.InvariantCulture)) },
                        "continue-lag" => host with { ContinueLag = TimeSpan.FromMilliseconds(double.Parse(value, CultureInfo.InvariantCulture)) },
                        "lockspace-join" => host with { LockspaceJoin = TimeSpan.FromSeconds(double.Parse(value, CultureInfo.InvariantCulture)) },
                        _ => throw new ArgumentException($"unknown host option {key}"),
                    };
                }

                Hosts[index] = host;
                break;
            }

            case "vm":
            {
                var vm = new VmSpec(w[1]);
                foreach (var (key, value) in Options(w.Skip(2)))
                {
                    vm = key switch
                    {
                        "memory" => vm with { Memory = long.Parse(value, CultureInfo.InvariantCulture) },
                        "on" => vm with { On = value },
                        "priority" => vm with { Priority = value == "none" ? RestartPriority.Unprotected : value },
                        "order" => vm with { Order = long.Parse(value, CultureInfo.InvariantCulture) },
                        "start-delay" => vm with { StartDelay = long.Parse(value, CultureInfo.InvariantCulture) },
                        "local" => vm with { LocalTo = value },
                        _ => throw new ArgumentException($"unknown vm option {key}"),
                    };
                }

                Vms.Add(vm);
                break;
            }

            case "ha":
                HaEnabled = w[1] == "on";
                break;
            case "client":
                ClientFailover = w[1] != "local";
                break;
            case "legacy" when w[1] == "self-fence-ignores-incoming":
                LegacySelfFenceIgnoresIncoming = true;
                break;
            case "fence-daemon":
                FenceDaemon = w[1] != "off";
                break;
            case "watchdog-timeout":
                Timings = Timings with { WatchdogTimeout = Seconds(w[1]) };
                break;
            case "ttl":
                Timings = Timings with { LeaseTtl = Seconds(w[1]) };
                break;
            case "margin":
                Timings = Timings with { LeaseSafetyMargin = Seconds(w[1]) };
                break;
            case "fence-margin":
                Timings = Timings with { FenceMargin = Seconds(w[1]) };
                break;
            case "stale-after":
                Timings = Timings with { HeartbeatStaleAfter = Seconds(w[1]) };
                break;
            case "own-heartbeat-window":
                Timings = Timings with { OwnHeartbeatWindow = Seconds(w[1]) };
                break;
            case "isolation-power-off-after":
                Timings = Timings with { IsolationPowerOffAfter = Seconds(w[1]) };
                break;
            case "bound":
                Bound = Seconds(w[1]);
                break;
            case "seeds":
                Seeds = int.Parse(w[1], CultureInfo.InvariantCulture);
                break;
            case "run":
                Duration = Seconds(w[1]);
                break;
            case "at":
                Steps.Add(new ScenarioStep(Seconds(w[1]), w[2], w.Skip(3).ToList(), string.Join(' ', w.Skip(2)), lineNumber));
                break;
            case "expect":
                Expectations.Add(new Expectation(w[1], w.Skip(2).ToList(), lineNumber));
                break;
            default:
                throw new ArgumentException($"unknown directive '{w[0]}' ({line})");
        }
    }

    private void Validate()
    {
        if (Hosts.Count == 0)
        {
            throw new ScenarioException($"{Name}: no hosts");
        }

        foreach (var vm in Vms)
        {
            if (vm.On is not null && Hosts.All(h => h.Name != vm.On))
            {
                throw new ScenarioException($"{Name}: VM {vm.Name} on unknown host {vm.On}");
            }
        }

        if (Steps.Any(s => s.At >= Duration))
        {
            throw new ScenarioException($"{Name}: a step after the end of the run ({Duration.TotalSeconds} s)");
        }
    }
}
