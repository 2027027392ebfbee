using System.Globalization;

namespace Corral.UnitTests.HaSimulation;

/// <summary>Checks a finished run against its scenario's <c>expect</c> lines and the invariants; returns what failed.</summary>
public static class ScenarioOutcome
{
    public static List<string> Check(Simulation sim)
    {
        var failures = new List<string>();
        var expectedViolations = sim.Scenario.Expectations.Where(e => e.Kind == "violation").SelectMany(e => e.Arguments).ToHashSet(StringComparer.Ordinal);
        foreach (var violation in sim.Invariants.Violations.Where(v => !expectedViolations.Contains(v.Kind)))
        {
            failures.Add($"invariant broken at {violation}");
        }

        foreach (var expectation in sim.Scenario.Expectations)
        {
            if (Failure(sim, expectation) is { } failure)
            {
                failures.Add($"line {expectation.Line}: expect {expectation.Kind} {string.Join(' ', expectation.Arguments)}: {failure}");
            }
        }

        return failures;
    }

    private static string? Failure(Simulation sim, Expectation e)
    {
        var a = e.Arguments;
        var keys = sim.Etcd.Keys;
        switch (e.Kind)
        {
            case "running":
            {
                var on = sim.Hosts.Where(h => h.RunningCopy(a[0]) is not null).Select(h => h.Name).ToList();
                if (on.Count != 1)
                {
                    return $"{on.Count} running copies";
                }

                if (a.Count > 2 && a[1] == "on" && !a.Skip(2).Contains(on[0]))
                {
                    return $"runs on {on[0]}";
                }

                var state = keys.TryGetValue(SimKeys.Vm(a[0]), out var s) ? s.Value : "";
                return state == SimKeys.RunningOn(on[0]) ? null : $"runs on {on[0]} but the pool database says '{state}'";
            }

            case "halted":
            {
                var on = sim.Hosts.Where(h => h.Powered && h.HasProcess(a[0])).Select(h => h.Name).ToList();
                var state = keys.TryGetValue(SimKeys.Vm(a[0]), out var s) ? s.Value : "";
                return on.Count == 0 && state == SimKeys.Halted ? null : $"runs on [{string.Join(",", on)}], pool database '{state}'";
            }

            case "down":
            {
                var on = sim.Hosts.Where(h => h.RunningCopy(a[0]) is not null).Select(h => h.Name).ToList();
                return on.Count == 0 ? null : $"runs on {string.Join(",", on)}";
            }

            case "live":
                return keys.ContainsKey(SimKeys.Live(a[0])) == (a[1] == "true") ? null : $"live is {keys.ContainsKey(SimKeys.Live(a[0]))}";
            case "master":
                return keys.TryGetValue(SimKeys.Master, out var m) && a.Contains(m.Value) ? null : $"master is {(keys.TryGetValue(SimKeys.Master, out var mm) ? mm.Value : "nobody")}";
            case "message":
                return keys.Any(k => k.Key.StartsWith(SimKeys.Messages, StringComparison.Ordinal) && k.Value.Value.Contains(" " + a[0] + " ", StringComparison.Ordinal))
                    ? null : "no HA_PROTECTED_VM_RESTART_FAILED message for it";
            case "no-message":
                return keys.Any(k => k.Key.StartsWith(SimKeys.Messages, StringComparison.Ordinal)) ? "a restart-failed message was raised" : null;
            case "copies":
            {
                var started = sim.Vm(a[0]).NextCopy - 1;
                return started == int.Parse(a[1], CultureInfo.InvariantCulture) ? null : $"{started} copies were started";
            }

            case "outage-under":
            {
                var longest = sim.Vm(a[0]).LongestOutage ?? TimeSpan.Zero;
                return longest.TotalSeconds < double.Parse(a[1], CultureInfo.InvariantCulture) ? null : $"longest outage {longest.TotalSeconds:0.000} s";
            }

            case "violation":
                return a.All(kind => sim.Invariants.Violations.Any(v => v.Kind == kind)) ? null
                    : $"expected a {string.Join(" or ", a)} violation (a known gap this scenario documents), saw none";
            case "trace":
                return sim.Trace.Any(l => l.Contains(a[0], StringComparison.Ordinal)) ? null : "not in the trace";
            case "no-trace":
                return sim.Trace.FirstOrDefault(l => l.Contains(a[0], StringComparison.Ordinal)) is { } line ? $"found: {line.Trim()}" : null;
            case "recovery-pending":
                return keys.Keys.Any(k => k.StartsWith(SimKeys.Recoveries, StringComparison.Ordinal)) ? null : "no recovery left";
            case "unplaceable":
                return null;
            default:
                return $"unknown expectation '{e.Kind}'";
        }
    }
}
