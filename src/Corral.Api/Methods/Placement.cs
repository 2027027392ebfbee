using System.Globalization;
using Corral.Api.Pool;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Api.Methods;

/// <summary>
/// Where a VM can run: a live, enabled host that has every SR of the VM's disks plugged and enough free memory; the
/// VM's affinity first, then a host where the start begins at once (<see cref="IStartReadiness"/>) before one where it
/// would wait.
/// </summary>
public sealed class Placement(IPoolDatabase database, IStartReadiness? readiness = null)
{
    /// <summary>Memory a host keeps for itself (the agent, QEMU's own overhead), as dom0 does on XenServer.</summary>
    public const long HostReserveBytes = 256L * 1024 * 1024;

    public static long MemoryNeeded(XenObject vm) => vm.Get(XenApi.VM.MemoryStaticMax) + vm.Get(XenApi.VM.MemoryOverhead);

    public async Task<IReadOnlyDictionary<string, long>> FreeMemoryByHostAsync(CancellationToken cancellationToken)
    {
        var hosts = await database.GetAllAsync(XenClasses.Host, cancellationToken);
        var metrics = (await database.GetAllAsync(XenClasses.HostMetrics, cancellationToken)).ToDictionary(m => m.Ref);
        var vms = await database.GetAllAsync(XenClasses.VM, cancellationToken);
        var free = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var host in hosts)
        {
            var total = metrics.TryGetValue(host.Get(XenApi.Host.Metrics), out var m) ? m.Get(XenApi.HostMetrics.MemoryTotal) : 0;
            free[host.Ref] = total - HostReserveBytes - host.Get(XenApi.Host.MemoryOverhead);
        }

        foreach (var vm in vms)
        {
            // A VM counts against the host it runs on, and the host it is about to run on: a halted VM being started,
            // or a running one migrating there (its memory is reserved on the destination until it has left, as
            // XenServer does, so that two migrations cannot both count on the same room).
            var residentOn = vm.Get(XenApi.VM.PowerState) is VmPowerState.Running or VmPowerState.Paused ? vm.Get(XenApi.VM.ResidentOn) : OpaqueRef.Null;
            var scheduledOn = vm.Get(XenApi.VM.ScheduledToBeResidentOn);
            Charge(residentOn, vm);
            if (scheduledOn != residentOn)
            {
                Charge(scheduledOn, vm);
            }
        }

        return free;

        void Charge(string hostRef, XenObject vm)
        {
            if (free.ContainsKey(hostRef))
            {
                free[hostRef] -= MemoryNeeded(vm);
            }
        }
    }

    /// <summary>What the host offers to VMs in all: its memory less what it keeps for itself.</summary>
    public async Task<long> CapacityAsync(XenObject host, CancellationToken cancellationToken)
    {
        var metrics = await database.TryGetAsync(XenClasses.HostMetrics, host.Get(XenApi.Host.Metrics), cancellationToken);
        return (metrics?.Get(XenApi.HostMetrics.MemoryTotal) ?? 0) - HostReserveBytes - host.Get(XenApi.Host.MemoryOverhead);
    }

    public async Task<bool> IsLiveAsync(XenObject host, CancellationToken cancellationToken)
    {
        var metrics = await database.TryGetAsync(XenClasses.HostMetrics, host.Get(XenApi.Host.Metrics), cancellationToken);
        return metrics?.Get(XenApi.HostMetrics.Live) ?? false;
    }

    /// <summary>Whether the SR is plugged (a currently attached PBD) on the host.</summary>
    public async Task<bool> IsPluggedAsync(XenObject sr, string hostRef, CancellationToken cancellationToken)
    {
        foreach (var pbdRef in sr.Get(XenApi.SR.PBDs))
        {
            if (await database.TryGetAsync(XenClasses.PBD, pbdRef, cancellationToken) is { } pbd
                && pbd.Get(XenApi.PBD.Host) == hostRef && pbd.Get(XenApi.PBD.CurrentlyAttached))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The first SR holding one of the VM's disks that the host has not plugged, or null when it reaches them all.</summary>
    public async Task<string?> MissingStorageAsync(XenObject vm, string hostRef, CancellationToken cancellationToken)
    {
        foreach (var vbdRef in vm.Get(XenApi.VM.VBDs))
        {
            var vbd = await database.TryGetAsync(XenClasses.VBD, vbdRef, cancellationToken);
            if (vbd is null || vbd.Get(XenApi.VBD.Empty) || OpaqueRef.IsNull(vbd.Get(XenApi.VBD.VDI))
                || await database.TryGetAsync(XenClasses.VDI, vbd.Get(XenApi.VBD.VDI), cancellationToken) is not { } vdi
                || await database.TryGetAsync(XenClasses.SR, vdi.Get(XenApi.VDI.SR), cancellationToken) is not { } sr)
            {
                continue;
            }

            if (!await IsPluggedAsync(sr, hostRef, cancellationToken))
            {
                return sr.Ref;
            }
        }

        return null;
    }

    /// <summary>
    /// The first network of the VM's VIFs the host cannot put it on, or null: as xapi's, a network with cards (PIFs) is
    /// reachable from a host whose card on it is attached; a network with none (internal) from every host.
    /// </summary>
    public async Task<string?> MissingNetworkAsync(XenObject vm, string hostRef, CancellationToken cancellationToken) =>
        MissingNetwork(await NetworkCardsAsync(vm, cancellationToken), hostRef);

    /// <summary>Each network of the VM's VIFs with its cards (PIFs), read once for all the hosts a placement weighs.</summary>
    private async Task<IReadOnlyList<(string Network, List<XenObject> Cards)>> NetworkCardsAsync(XenObject vm, CancellationToken cancellationToken)
    {
        var pifs = await database.GetAllAsync(XenClasses.PIF, cancellationToken);
        var networks = new List<(string, List<XenObject>)>();
        foreach (var vifRef in vm.Get(XenApi.VM.VIFs))
        {
            if (await database.TryGetAsync(XenClasses.VIF, vifRef, cancellationToken) is { } vif)
            {
                var network = vif.Get(XenApi.VIF.Network);
                networks.Add((network, pifs.Where(p => p.Get(XenApi.PIF.Network) == network).ToList()));
            }
        }

        return networks;
    }

    private static string? MissingNetwork(IReadOnlyList<(string Network, List<XenObject> Cards)> networks, string hostRef) =>
        networks.FirstOrDefault(n => n.Cards.Count > 0 && !n.Cards.Any(p => p.Get(XenApi.PIF.Host) == hostRef && p.Get(XenApi.PIF.CurrentlyAttached))).Network;

    /// <summary>VM_REQUIRES_SR unless every disk's SR is plugged on the host.</summary>
    public async Task CheckStorageReachableAsync(XenObject vm, string hostRef, CancellationToken cancellationToken)
    {
        if (await MissingStorageAsync(vm, hostRef, cancellationToken) is { } sr)
        {
            throw new XenApiException(ErrorCodes.VmRequiresSr, vm.Ref, sr);
        }
    }

    /// <summary><paramref name="host"/> if it is live; HOST_OFFLINE otherwise, as xapi answers for a host that is down.</summary>
    public async Task<XenObject> RequireLiveAsync(XenObject host, CancellationToken cancellationToken) =>
        await IsLiveAsync(host, cancellationToken) ? host : throw new XenApiException(ErrorCodes.HostOffline, host.Ref);

    /// <summary>Checks <paramref name="host"/> can take the VM now (its storage too, unless the caller checks that itself).</summary>
    public async Task CheckHostAsync(XenObject vm, XenObject host, CancellationToken cancellationToken, bool checkStorage = true)
    {
        if (!await IsLiveAsync(host, cancellationToken))
        {
            throw new XenApiException(ErrorCodes.HostOffline, host.Ref);
        }

        if (!host.Get(XenApi.Host.Enabled))
        {
            throw new XenApiException(ErrorCodes.HostDisabled, host.Ref);
        }

        if (checkStorage)
        {
            await CheckStorageReachableAsync(vm, host.Ref, cancellationToken);
        }

        if (await MissingNetworkAsync(vm, host.Ref, cancellationToken) is { } network)
        {
            throw new XenApiException(ErrorCodes.VmRequiresNetwork, vm.Ref, network);
        }

        var free = (await FreeMemoryByHostAsync(cancellationToken)).GetValueOrDefault(host.Ref);
        if (free < MemoryNeeded(vm))
        {
            throw new XenApiException(ErrorCodes.HostNotEnoughFreeMemory,
                MemoryNeeded(vm).ToString(CultureInfo.InvariantCulture), Math.Max(0, free).ToString(CultureInfo.InvariantCulture));
        }
    }

    /// <summary>The key in a host's other_config naming what its VMs run under (kvm or tcg), written by its agent.</summary>
    public const string AcceleratorKey = "corral-accelerator";

    /// <summary>
    /// A running VM moves live only between hosts that run VMs alike: a guest's CPU state under KVM (-cpu host) means
    /// nothing to TCG (-cpu max) and the other way round, so it would die on arrival. A fresh start may go anywhere.
    /// During a rolling upgrade a VM moves only to a host that runs the same build or a newer one.
    /// </summary>
    /// <exception cref="XenApiException">VM_INCOMPATIBLE_WITH_THIS_HOST, NOT_SUPPORTED_DURING_UPGRADE.</exception>
    public static void CheckLiveMigrationCompatible(XenObject vm, XenObject source, XenObject destination)
    {
        RollingUpgrade.CheckNotDecreasing(source, destination);
        var here = source.Get(XenApi.Host.OtherConfig).GetValueOrDefault(AcceleratorKey);
        var there = destination.Get(XenApi.Host.OtherConfig).GetValueOrDefault(AcceleratorKey);
        if (string.IsNullOrEmpty(here) || string.IsNullOrEmpty(there) || here == there)
        {
            // Unknown until the host's agent has decided; both ends decide the same on one kind of machine.
            return;
        }

        throw new XenApiException(ErrorCodes.VmIncompatibleWithThisHost, vm.Ref, destination.Ref,
            $"the VM runs under {here} on {source.Get(XenApi.Host.NameLabel)} and would run under {there} on {destination.Get(XenApi.Host.NameLabel)}");
    }

    /// <summary>
    /// Picks the host for a VM: its affinity when that host can take it, else the one with the most room where the start
    /// begins at once, else the one with the most room. During a rolling upgrade, only among the hosts that run the
    /// newest build (<see cref="RollingUpgrade.MayStartVms"/>), unless <paramref name="anyBuild"/> (HA's restarts: a
    /// protected VM back on an older host beats one that stays down).
    /// </summary>
    public async Task<XenObject> ChooseAsync(XenObject vm, CancellationToken cancellationToken, bool anyBuild = false)
    {
        var hosts = await database.GetAllAsync(XenClasses.Host, cancellationToken);
        var free = await FreeMemoryByHostAsync(cancellationToken);
        var needed = MemoryNeeded(vm);
        var candidates = new List<XenObject>();
        foreach (var host in hosts)
        {
            if (host.Get(XenApi.Host.Enabled) && await IsLiveAsync(host, cancellationToken))
            {
                candidates.Add(host);
            }
        }

        if (!anyBuild)
        {
            candidates = [.. RollingUpgrade.MayStartVms(candidates, hosts)];
        }

        if (candidates.Count == 0)
        {
            throw new XenApiException(ErrorCodes.NoHostsAvailable);
        }

        // Only hosts that reach the VM's disks (a disk on a host's local SR ties the VM to that host) and its networks.
        string? missing = null, missingNetwork = null;
        var networks = await NetworkCardsAsync(vm, cancellationToken);
        var reaching = new List<XenObject>();
        foreach (var host in candidates)
        {
            if (await MissingStorageAsync(vm, host.Ref, cancellationToken) is { } sr)
            {
                missing ??= sr;
            }
            else if (MissingNetwork(networks, host.Ref) is { } network)
            {
                missingNetwork ??= network;
            }
            else
            {
                reaching.Add(host);
            }
        }

        if (reaching.Count == 0)
        {
            throw missing is not null
                ? new XenApiException(ErrorCodes.VmRequiresSr, vm.Ref, missing)
                : new XenApiException(ErrorCodes.VmRequiresNetwork, vm.Ref, missingNetwork!);
        }

        candidates = reaching;

        var affinity = candidates.FirstOrDefault(h => h.Ref == vm.Get(XenApi.VM.Affinity));
        if (affinity is not null && free[affinity.Ref] >= needed)
        {
            return affinity;
        }

        // A host just back from a reboot has the most room and has yet to join the VMs' lease lockspace: a start there
        // waits for that. Among the hosts with room, one where the start begins at once comes first.
        if (readiness is not null)
        {
            var roomy = candidates.Where(h => free[h.Ref] >= needed).OrderByDescending(h => free[h.Ref]).ToList();
            var ready = await readiness.ReadyHostsAsync(vm, roomy.Select(h => h.Ref).ToList(), cancellationToken);
            if (roomy.FirstOrDefault(h => ready.Contains(h.Ref)) is { } host)
            {
                return host;
            }
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
