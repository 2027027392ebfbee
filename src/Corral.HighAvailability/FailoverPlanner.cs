namespace Corral.HighAvailability;

/// <summary>A host as failover planning sees it: the memory it offers to VMs, whatever runs on it now.</summary>
public sealed record PlanHost(string Ref, long Capacity);

/// <summary>A running VM: where it runs, what it needs, and whether it is protected (restart priority "restart").</summary>
public sealed record PlanVm(string Ref, string Host, long Memory, bool Protected);

/// <summary>
/// Whether the protected VMs survive host failures, as XenServer's failover planner answers
/// <c>pool.ha_compute_max_host_failures_to_tolerate</c>: for every set of N hosts that could fail, the protected VMs
/// that ran there must fit on the survivors next to what already runs on them, placed largest first on the host with
/// the most room left (the placement the restart itself uses). Unprotected VMs on survivors keep their memory; on
/// failed hosts they are simply gone.
/// </summary>
public static class FailoverPlanner
{
    /// <summary>Beyond this many failure sets the answer is not worth the time; pools that large are not Corral's yet.</summary>
    public const int MaxCombinations = 100_000;

    public static bool PlanExists(IReadOnlyList<PlanHost> hosts, IReadOnlyList<PlanVm> vms, int failures)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(failures);
        if (failures == 0)
        {
            return true;
        }

        if (failures >= hosts.Count)
        {
            // Nobody left to restart anything on: a plan exists only if there is nothing to restart.
            return !vms.Any(v => v.Protected);
        }

        var checkedSets = 0;
        foreach (var failed in Combinations(hosts.Count, failures))
        {
            if (++checkedSets > MaxCombinations)
            {
                throw new InvalidOperationException($"too many failure combinations to check ({hosts.Count} hosts, {failures} failures)");
            }

            var failedRefs = failed.Select(i => hosts[i].Ref).ToHashSet(StringComparer.Ordinal);
            if (Place(hosts, vms, failedRefs) is null)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The largest N (up to hosts - 1) for which a plan exists for N failures and for every smaller N.</summary>
    public static int MaxFailuresToTolerate(IReadOnlyList<PlanHost> hosts, IReadOnlyList<PlanVm> vms)
    {
        var n = 0;
        while (n + 1 < hosts.Count && PlanExists(hosts, vms, n + 1))
        {
            n++;
        }

        return n;
    }

    /// <summary>
    /// Where the protected VMs of <paramref name="failed"/> would restart (VM ref to host ref), or null when one does
    /// not fit. Largest first, each on the surviving host with the most room left.
    /// </summary>
    public static IReadOnlyDictionary<string, string>? Place(IReadOnlyList<PlanHost> hosts, IReadOnlyList<PlanVm> vms, IReadOnlySet<string> failed)
    {
        var room = hosts.Where(h => !failed.Contains(h.Ref)).ToDictionary(h => h.Ref, h => h.Capacity, StringComparer.Ordinal);
        foreach (var vm in vms.Where(v => room.ContainsKey(v.Host)))
        {
            room[vm.Host] -= vm.Memory;
        }

        var placement = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var vm in vms.Where(v => v.Protected && failed.Contains(v.Host)).OrderByDescending(v => v.Memory).ThenBy(v => v.Ref, StringComparer.Ordinal))
        {
            if (room.Count == 0)
            {
                return null;
            }

            var best = room.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal).First();
            if (best.Value < vm.Memory)
            {
                return null;
            }

            room[best.Key] = best.Value - vm.Memory;
            placement[vm.Ref] = best.Key;
        }

        return placement;
    }

    private static IEnumerable<int[]> Combinations(int n, int k)
    {
        var indexes = Enumerable.Range(0, k).ToArray();
        while (true)
        {
            yield return (int[])indexes.Clone();
            var i = k - 1;
            while (i >= 0 && indexes[i] == n - k + i)
            {
                i--;
            }

            if (i < 0)
            {
                yield break;
            }

            indexes[i]++;
            for (var j = i + 1; j < k; j++)
            {
                indexes[j] = indexes[j - 1] + 1;
            }
        }
    }
}
