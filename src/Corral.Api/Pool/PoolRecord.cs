using System.Globalization;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Api.Pool;

/// <summary>
/// The pool record's fields that clients index and that follow from the hosts: <c>cpu_info</c> (the pool's CPUs, as
/// xapi sums its hosts') and <c>restrictions</c> (a feature is the pool's only if every host has it, as xapi combines
/// its hosts' <c>license_params</c>). The pool's other fields keep the datamodel's defaults (what xapi's own pool
/// record starts with) or what Corral's messages set.
/// </summary>
public static class PoolRecord
{
    /// <summary>
    /// The pool's <c>cpu_info</c>: cpu_count and socket_count summed over the hosts, the vendor they share (xapi keeps
    /// the last host's; hosts of mixed vendors cannot migrate VMs between them anyway, so that is named as it is).
    /// </summary>
    public static Dictionary<string, string> CpuInfo(IEnumerable<XenObject> hosts)
    {
        long cpus = 0, sockets = 0;
        var vendors = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var host in hosts)
        {
            var info = host.Get(XenApi.Host.CpuInfo);
            cpus += long.TryParse(info.GetValueOrDefault("cpu_count"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var c) ? c : 0;
            sockets += long.TryParse(info.GetValueOrDefault("socket_count"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var s) ? s : 0;
            if (info.GetValueOrDefault("vendor") is { Length: > 0 } vendor)
            {
                vendors.Add(vendor);
            }
        }

        return new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["cpu_count"] = cpus.ToString(CultureInfo.InvariantCulture),
            ["socket_count"] = sockets.ToString(CultureInfo.InvariantCulture),
            ["vendor"] = string.Join(",", vendors),
        };
    }

    /// <summary>Recomputes <c>cpu_info</c> and <c>restrictions</c> from the hosts (after a host registers or leaves).</summary>
    public static async Task RefreshAsync(IPoolDatabase database, CancellationToken cancellationToken)
    {
        var pools = await database.GetAllAsync(XenClasses.Pool, cancellationToken);
        if (pools.Count == 0)
        {
            return;
        }

        var hosts = await database.GetAllAsync(XenClasses.Host, cancellationToken);
        var cpuInfo = CpuInfo(hosts);
        var restrictions = HostLicense.PoolRestrictions(hosts.Select(h => h.Get(XenApi.Host.LicenseParams)));
        await database.UpdateAsync([(XenClasses.Pool, pools[0].Ref)], (objs, tx) =>
        {
            var p = objs[0];
            if (SameMap(p.Get(XenApi.Pool.CpuInfo), cpuInfo) && SameMap(p.Get(XenApi.Pool.Restrictions), restrictions))
            {
                return;
            }

            var updated = p.Clone();
            updated.Set(XenApi.Pool.CpuInfo, cpuInfo);
            updated.Set(XenApi.Pool.Restrictions, restrictions);
            tx.Update(updated);
        }, cancellationToken);
    }

    private static bool SameMap(IReadOnlyDictionary<string, string> stored, Dictionary<string, string> wanted) =>
        stored.Count == wanted.Count && wanted.All(kv => stored.TryGetValue(kv.Key, out var v) && v == kv.Value);
}
