using System.Globalization;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Api.Methods;

/// <summary>Where a VM can run: a live, enabled host with enough free memory; the VM's affinity first.</summary>
public sealed class Placement(IPoolDatabase database)
{
    /// <summary>Memory a host keeps for itself (the agent, QEMU's own overhead), as dom0 does on XenServer.</summary>
    public const long HostReserveBytes = 256L * 1024 * 1024;

    public static long MemoryNeeded(XenObject vm) => vm.GetInt("memory_static_max") + vm.GetInt("memory_overhead");

    public async Task<IReadOnlyDictionary<string, long>> FreeMemoryByHostAsync(CancellationToken cancellationToken)
    {
        var hosts = await database.GetAllAsync(XenClasses.Host, cancellationToken).ConfigureAwait(false);
        var metrics = (await database.GetAllAsync(XenClasses.HostMetrics, cancellationToken).ConfigureAwait(false)).ToDictionary(m => m.Ref);
        var vms = await database.GetAllAsync(XenClasses.VM, cancellationToken).ConfigureAwait(false);
        var free = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var host in hosts)
        {
            var total = metrics.TryGetValue(host.GetString("metrics"), out var m) ? m.GetInt("memory_total") : 0;
            free[host.Ref] = total - HostReserveBytes - host.GetInt("memory_overhead");
        }

        foreach (var vm in vms)
        {
            // A VM counts against the host it runs on, or is about to run on.
            var host = vm.GetString("power_state") is "Running" or "Paused" ? vm.GetString("resident_on") : vm.GetString("scheduled_to_be_resident_on");
            if (free.ContainsKey(host))
            {
                free[host] -= MemoryNeeded(vm);
            }
        }

        return free;
    }

    public async Task<bool> IsLiveAsync(XenObject host, CancellationToken cancellationToken)
    {
        var metrics = await database.TryGetAsync(XenClasses.HostMetrics, host.GetString("metrics"), cancellationToken).ConfigureAwait(false);
        return metrics?.GetBool("live") ?? false;
    }

    /// <summary>Checks <paramref name="host"/> can take the VM now.</summary>
    public async Task CheckHostAsync(XenObject vm, XenObject host, CancellationToken cancellationToken)
    {
        if (!await IsLiveAsync(host, cancellationToken).ConfigureAwait(false))
        {
            throw new XenApiException(ErrorCodes.HostOffline, host.Ref);
        }

        if (!host.GetBool("enabled"))
        {
            throw new XenApiException(ErrorCodes.HostDisabled, host.Ref);
        }

        var free = (await FreeMemoryByHostAsync(cancellationToken).ConfigureAwait(false)).GetValueOrDefault(host.Ref);
        if (free < MemoryNeeded(vm))
        {
            throw new XenApiException(ErrorCodes.HostNotEnoughFreeMemory,
                MemoryNeeded(vm).ToString(CultureInfo.InvariantCulture), Math.Max(0, free).ToString(CultureInfo.InvariantCulture));
        }
    }

    /// <summary>Picks the host for a VM: its affinity when that host can take it, else the one with the most room.</summary>
    public async Task<XenObject> ChooseAsync(XenObject vm, CancellationToken cancellationToken)
    {
        var hosts = await database.GetAllAsync(XenClasses.Host, cancellationToken).ConfigureAwait(false);
        var free = await FreeMemoryByHostAsync(cancellationToken).ConfigureAwait(false);
        var needed = MemoryNeeded(vm);
        var candidates = new List<XenObject>();
        foreach (var host in hosts)
        {
            if (host.GetBool("enabled") && await IsLiveAsync(host, cancellationToken).ConfigureAwait(false))
            {
                candidates.Add(host);
            }
        }

        if (candidates.Count == 0)
        {
            throw new XenApiException(ErrorCodes.NoHostsAvailable);
        }

        var affinity = candidates.FirstOrDefault(h => h.Ref == vm.GetString("affinity"));
        if (affinity is not null && free[affinity.Ref] >= needed)
        {
            return affinity;
        }

        var best = candidates.OrderByDescending(h => free[h.Ref]).First();
        if (free[best.Ref] < needed)
        {
            throw new XenApiException(ErrorCodes.HostNotEnoughFreeMemory, needed.ToString(CultureInfo.InvariantCulture),
                Math.Max(0, free[best.Ref]).ToString(CultureInfo.InvariantCulture));
        }

        return best;
    }
}
