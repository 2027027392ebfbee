using System.Globalization;
using Corral.Api.Methods;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Api.Migration;

/// <summary>Where each VM of a host goes when the host is evacuated, and what keeps a VM from going anywhere.</summary>
/// <param name="Destinations">VM reference to destination host reference.</param>
/// <param name="Blockers">VM reference to the XenAPI error (code, then parameters) explaining why it cannot move.</param>
public sealed record EvacuationPlan(IReadOnlyDictionary<string, string> Destinations, IReadOnlyDictionary<string, IReadOnlyList<string>> Blockers);

/// <summary>
/// Plans an evacuation as XenServer's maintenance mode does: each running VM (largest first) goes to the live,
/// enabled host that can reach its storage and has the most free memory left, counting the VMs already planned.
/// </summary>
public sealed class EvacuationPlanner(IPoolDatabase database, Placement placement)
{
    public async Task<EvacuationPlan> PlanAsync(string hostRef, CancellationToken cancellationToken)
    {
        var hosts = new List<XenObject>();
        var all = await database.GetAllAsync(XenClasses.Host, cancellationToken);
        var evacuated = all.FirstOrDefault(h => h.Ref == hostRef);
        foreach (var host in all)
        {
            if (host.Ref != hostRef && host.Get(XenApi.Host.Enabled) && await placement.IsLiveAsync(host, cancellationToken))
            {
                hosts.Add(host);
            }
        }

        var free = (await placement.FreeMemoryByHostAsync(cancellationToken)).ToDictionary(kv => kv.Key, kv => kv.Value);
        var vms = (await database.GetAllAsync(XenClasses.VM, cancellationToken))
            .Where(v => v.Get(XenApi.VM.ResidentOn) == hostRef && v.Get(XenApi.VM.PowerState) is VmPowerState.Running or VmPowerState.Paused && !v.Get(XenApi.VM.IsControlDomain))
            .OrderByDescending(Placement.MemoryNeeded).ToList();
        var destinations = new Dictionary<string, string>(StringComparer.Ordinal);
        var blockers = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        foreach (var vm in vms)
        {
            if (await MigrationRecord.ReadAsync(database, vm.Ref, cancellationToken) is { } running)
            {
                destinations[vm.Ref] = running.Record.DestinationRef; // already on its way
                continue;
            }

            if (hosts.Count == 0)
            {
                blockers[vm.Ref] = [ErrorCodes.NoHostsAvailable];
                continue;
            }

            var reachable = new List<XenObject>();
            XenApiException? refusal = null;
            foreach (var host in hosts)
            {
                try
                {
                    if (evacuated is not null)
                    {
                        Placement.CheckLiveMigrationCompatible(vm, evacuated, host);
                    }

                    await placement.CheckStorageReachableAsync(vm, host.Ref, cancellationToken);
                    reachable.Add(host);
                }
                catch (XenApiException ex)
                {
                    refusal = ex;
                }
            }

            if (reachable.Count == 0)
            {
                blockers[vm.Ref] = refusal!.ErrorDescription;
                continue;
            }

            var needed = Placement.MemoryNeeded(vm);
            var best = reachable.OrderByDescending(h => free.GetValueOrDefault(h.Ref)).First();
            if (free.GetValueOrDefault(best.Ref) < needed)
            {
                blockers[vm.Ref] = [ErrorCodes.HostNotEnoughFreeMemory, needed.ToString(CultureInfo.InvariantCulture),
                    Math.Max(0, free.GetValueOrDefault(best.Ref)).ToString(CultureInfo.InvariantCulture)];
                continue;
            }

            destinations[vm.Ref] = best.Ref;
            free[best.Ref] = free.GetValueOrDefault(best.Ref) - needed;
        }

        return new EvacuationPlan(destinations, blockers);
    }
}
