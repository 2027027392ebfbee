using Corral.HighAvailability;

namespace Corral.UnitTests.HaSimulation;

/// <summary>One broken invariant: when, which, and what was seen.</summary>
public sealed record Violation(TimeSpan At, string Kind, string Detail)
{
    public override string ToString() => $"{At.TotalSeconds:0.000} {Kind}: {Detail}";
}

/// <summary>
/// What must hold at every step of every run, whatever the scenario expects:
/// <list type="bullet">
/// <item><c>two-copies</c>: never two running copies of one VM (processes on powered, unfrozen hosts that run the
/// guest: a live migration's incoming copy once all of the VM arrived, not the source's copy paused at the switchover);</item>
/// <item><c>stale-write</c>: the disk never takes a write from an older copy once a newer copy has written;</item>
/// <item><c>owner</c>: a running copy's host holds the VM's ownership key, unless the host is cut off (then it must be
/// fencing itself), so the pool database never places a VM's ownership on one host while another runs it (a live
/// migration's destination runs the guest just before its commit moves the ownership: allowed while acknowledged and
/// undecided);</item>
/// <item><c>outage</c>: a protected VM meant to run is running again within the scenario's bound;</item>
/// <item><c>continue-twice</c>: a live migration's source sends QEMU <c>migrate-continue</c> once at most (a second
/// one, should QEMU have completed by then, is refused);</item>
/// </list>
/// and at the end: <c>recovery-left</c> (every recovery finished), <c>migration-left</c> (every live migration ended,
/// its record, the VM's migration lock, gone), <c>db-mismatch</c> (the pool database places every
/// VM where its process runs, on hosts that are up).
/// </summary>
public sealed class Invariants(Simulation sim)
{
    private readonly HashSet<string> _reported = new(StringComparer.Ordinal);

    public List<Violation> Violations { get; } = [];

    private void Report(string kind, string key, string detail)
    {
        if (_reported.Add(kind + "|" + key))
        {
            Violations.Add(new Violation(sim.Now, kind, detail));
            sim.Log("CHECK", $"VIOLATION {kind}: {detail}");
        }
    }

    public void DiskWrite(SimHost host, SimProcess process)
    {
        var vm = process.Vm;
        if (host.StorageCut && vm.Spec.LocalTo is null)
        {
            // The shared disk is out of reach: the write does not land.
            return;
        }

        if (vm.NewestWriter > process.Copy)
        {
            Report("stale-write", $"{vm.Spec.Name}#{process.Copy}", $"copy {process.Copy} of {vm.Spec.Name} on {host.Name} wrote after copy {vm.NewestWriter} had written");
        }

        vm.NewestWriter = Math.Max(vm.NewestWriter, process.Copy);
        vm.Writes++;
    }

    /// <summary>The source of migration <paramref name="id"/> sent <c>migrate-continue</c>, for the <paramref name="times"/>th time.</summary>
    public void MigrateContinue(string vm, string id, int times)
    {
        if (times > 1)
        {
            Report("continue-twice", vm + id, $"migrate-continue sent {times} times in the migration of {vm}");
        }
    }

    private bool HaOn => sim.Etcd.Keys.TryGetValue(SimKeys.HaEnabled, out var ha) && ha.Value == "true";

    public void CheckStep()
    {
        foreach (var vm in sim.Vms.Values)
        {
            var running = sim.Hosts.Where(h => h.RunningCopy(vm.Spec.Name) is not null).ToList();
            if (running.Count > 1)
            {
                Report("two-copies", vm.Spec.Name + string.Concat(running.Select(h => h.RunningCopy(vm.Spec.Name)!.Copy)),
                    $"{vm.Spec.Name} runs on {string.Join(" and ", running.Select(h => $"{h.Name} (copy {h.RunningCopy(vm.Spec.Name)!.Copy})"))}");
            }

            foreach (var host in running)
            {
                var owner = sim.Etcd.Keys.TryGetValue(SimKeys.Owner(vm.Spec.Name), out var o) ? o.Value : null;
                if (owner is not null && owner != host.Name && !SwitchingOver(vm.Spec.Name, host))
                {
                    Report("owner", $"{vm.Spec.Name}@{host.Name}#{owner}", $"{vm.Spec.Name} runs on {host.Name} while {owner} holds its ownership");
                }
            }

            if (vm.MeantToRun && vm.Priority == RestartPriority.Restart && HaOn)
            {
                if (running.Count == 0)
                {
                    vm.DownSince ??= sim.Now;
                    if (sim.Now - vm.DownSince > sim.Scenario.Bound && !Expects("unplaceable", vm.Spec.Name))
                    {
                        Report("outage", vm.Spec.Name + vm.DownSince, $"protected VM {vm.Spec.Name} has not run for {(sim.Now - vm.DownSince.Value).TotalSeconds:0.0} s (bound {sim.Scenario.Bound.TotalSeconds} s)");
                    }
                }
                else if (vm.DownSince is { } since)
                {
                    var outage = sim.Now - since;
                    vm.LongestOutage = vm.LongestOutage is { } longest && longest > outage ? longest : outage;
                    vm.DownSince = null;
                }
            }
            else
            {
                vm.DownSince = null;
            }
        }
    }

    /// <summary>
    /// A destination's copy runs the guest before the commit moves the ownership: the migration acknowledged and not
    /// yet decided, the source's copy paused for good (it resumes only on a cancel, which QEMU refuses once completed).
    /// </summary>
    private bool SwitchingOver(string vm, SimHost host) =>
        host.Incoming.TryGetValue(vm, out var incoming) && host.RunningCopy(vm) == incoming
        && sim.Etcd.Keys.TryGetValue(Corral.Api.Migration.MigrationRecord.KeyOf(vm), out var json)
        && Corral.Api.Migration.MigrationRecord.FromJson(json.Value) is { State: Corral.Api.Migration.MigrationStates.SwitchAcknowledged } record
        && record.DestinationRef == host.Name;

    public bool Expects(string kind, string argument) => sim.Scenario.Expectations.Any(e => e.Kind == kind && e.Arguments.Contains(argument));

    public void CheckEnd()
    {
        if (!sim.Scenario.Expectations.Any(e => e.Kind == "recovery-pending"))
        {
            foreach (var key in sim.Etcd.Keys.Keys.Where(k => k.StartsWith(SimKeys.Recoveries, StringComparison.Ordinal)))
            {
                Report("recovery-left", key, $"recovery {key[SimKeys.Recoveries.Length..]} still in progress at the end");
            }
        }

        foreach (var key in sim.Etcd.Keys.Keys.Where(k => k.StartsWith(Corral.Api.Migration.MigrationRecord.Prefix, StringComparison.Ordinal)))
        {
            // The record is the VM's migration lock: left behind, the VM can never be migrated again.
            Report("migration-left", key, $"migration of {key[Corral.Api.Migration.MigrationRecord.Prefix.Length..]} still recorded at the end");
        }

        foreach (var vm in sim.Vms.Values)
        {
            var state = sim.Etcd.Keys.TryGetValue(SimKeys.Vm(vm.Spec.Name), out var s) ? s.Value : SimKeys.Halted;
            foreach (var host in sim.Hosts.Where(h => h.Powered && !h.Frozen))
            {
                var runs = host.RunningCopy(vm.Spec.Name) is not null;
                var placed = state == SimKeys.RunningOn(host.Name);
                if (runs != placed)
                {
                    Report("db-mismatch", vm.Spec.Name + host.Name, $"{vm.Spec.Name}: the pool database says '{state}' but {host.Name} {(runs ? "runs" : "does not run")} it");
                }
            }
        }
    }
}
