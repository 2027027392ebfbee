using Corral.HighAvailability;

namespace Corral.UnitTests.HaSimulation;

/// <summary>
/// An operator's commands (<c>at T command ...</c>), sent to the pool through whichever host can reach the pool
/// database, as <c>xe</c> would reach the master: start, clean shutdown, guest power-off, protection changes, HA on and
/// off, host enable and disable, live migration.
/// </summary>
public static class Commands
{
    public static void Run(Simulation sim, IReadOnlyList<string> words)
    {
        var via = sim.Hosts.OrderBy(h => h.Name == h.BelievedMaster ? 0 : 1).FirstOrDefault(h => Reaches(sim, h));
        if (via is null)
        {
            sim.Log("xe", $"{string.Join(' ', words)}: no host reaches the pool database");
            return;
        }

        var etcd = sim.Etcd;
        try
        {
            switch (words[0])
            {
                case "start":
                {
                    var vm = sim.Vm(words[1]);
                    var host = new SimRecoveryWorld(sim, via).Start(vm, words.Count > 3 && words[2] == "on" ? words[3] : null);
                    vm.MeantToRun = true;
                    sim.Log("xe", $"vm-start {words[1]}: started on {host}");
                    break;
                }

                case "migrate" when words.Count == 4 && words[2] == "to":
                {
                    var vm = sim.Vm(words[1]);
                    SimMigration.Begin(sim, via, vm, sim.Host(words[3]));
                    break;
                }

                case "shutdown":
                {
                    var vm = sim.Vm(words[1]);
                    vm.MeantToRun = false;
                    vm.DownSince = null;
                    if (etcd.Get(via, SimKeys.Vm(vm.Spec.Name)) is { } state && state.StartsWith("Running@", StringComparison.Ordinal))
                    {
                        var host = sim.Host(state["Running@".Length..]);
                        etcd.Reach(host);
                        host.Kill(vm.Spec.Name);
                        etcd.Txn(host, [], [(SimKeys.Vm(vm.Spec.Name), SimKeys.Halted, 0), (SimKeys.Owner(vm.Spec.Name), null, 0)]);
                        sim.Log("xe", $"vm-shutdown {words[1]}: halted on {host.Name}");
                    }

                    break;
                }

                case "guest-poweroff":
                {
                    // The guest shuts itself down: intended, so HA leaves it halted (as XenServer does).
                    var vm = sim.Vm(words[1]);
                    vm.MeantToRun = false;
                    vm.DownSince = null;
                    foreach (var host in sim.Hosts.Where(h => h.Processes.ContainsKey(vm.Spec.Name) && h.Powered && !h.Frozen))
                    {
                        host.ProcessExited(host.Processes[vm.Spec.Name], "powered off by its guest");
                    }

                    break;
                }

                case "set":
                {
                    var vm = sim.Vm(words[1]);
                    etcd.Reach(via);
                    foreach (var option in words.Skip(2).Select(w => w.Split('=', 2)))
                    {
                        switch (option[0])
                        {
                            case "priority":
                                vm.Priority = option[1] == "none" ? RestartPriority.Unprotected : option[1];
                                break;
                            case "order":
                                vm.Order = long.Parse(option[1], System.Globalization.CultureInfo.InvariantCulture);
                                break;
                            case "start-delay":
                                vm.StartDelay = long.Parse(option[1], System.Globalization.CultureInfo.InvariantCulture);
                                break;
                            default:
                                throw new ScenarioException($"unknown VM setting {option[0]}");
                        }
                    }

                    sim.Log("xe", $"vm-param-set {string.Join(' ', words.Skip(1))}");
                    break;
                }

                case "ha-enable":
                    etcd.Put(via, SimKeys.HaEnabled, "true");
                    sim.Log("xe", "pool-ha-enable");
                    break;
                case "ha-disable":
                    etcd.Put(via, SimKeys.HaEnabled, "false");
                    sim.Log("xe", "pool-ha-disable");
                    break;
                case "host-disable":
                    etcd.Put(via, SimKeys.HostEnabled(words[1]), "false");
                    sim.Log("xe", $"host-disable {words[1]}");
                    break;
                case "host-enable":
                    etcd.Put(via, SimKeys.HostEnabled(words[1]), "true");
                    sim.Log("xe", $"host-enable {words[1]}");
                    break;
                default:
                    throw new ScenarioException($"unknown command {words[0]}");
            }
        }
        catch (VmRestartException ex)
        {
            sim.Log("xe", $"{string.Join(' ', words)}: {ex.Message}");
        }
        catch (SimUnavailableException ex)
        {
            sim.Log("xe", $"{string.Join(' ', words)}: {ex.Message}");
        }
    }

    private static bool Reaches(Simulation sim, SimHost host)
    {
        try
        {
            sim.Etcd.Reach(host);
            return true;
        }
        catch (SimUnavailableException)
        {
            return false;
        }
    }
}
