using System.Globalization;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Api.Pool;

/// <summary>
/// The pool record's fields that clients index and that follow from the hosts: <c>cpu_info</c> (the pool's CPUs, as
/// xapi sums its hosts') and <c>restrictions</c> (a feature is the pool's only if every host has it, as xapi combines
/// its hosts' <c>license_params</c>), and <c>other_config:rolling_upgrade_in_progress</c> while the hosts run different
/// builds (<see cref="RollingUpgrade"/>), and <c>tls_verification_enabled</c>, true: the hosts verify one another from
/// the pool's creation (<see cref="TlsVerificationMethods"/>). The pool's other fields keep the datamodel's defaults (what xapi's own pool
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

    /// <summary>
    /// Recomputes <c>cpu_info</c>, <c>restrictions</c> and the rolling upgrade mark from the hosts (after a host
    /// registers, as an upgraded host's agent does when it starts, or leaves). The hosts are read in the same guarded
    /// transaction as the pool, so that two hosts registering at once cannot leave a mark computed from an older read.
    /// Returns whether a rolling upgrade is in progress.
    /// </summary>
    public static async Task<bool> RefreshAsync(IPoolDatabase database, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await RefreshOnceAsync(database, cancellationToken);
            }
            catch (XenApiException ex) when (ex.Code == ErrorCodes.HandleInvalid && attempt < 5)
            {
                // A host left between the listing and the transaction: list again.
            }
        }
    }

    private static async Task<bool> RefreshOnceAsync(IPoolDatabase database, CancellationToken cancellationToken)
    {
        var pools = await database.GetAllAsync(XenClasses.Pool, cancellationToken);
        if (pools.Count == 0)
        {
            return false;
        }

        var hostRefs = (await database.GetAllAsync(XenClasses.Host, cancellationToken)).Select(h => (XenClasses.Host, h.Ref));
        var upgrading = false;
        await database.UpdateAsync([(XenClasses.Pool, pools[0].Ref), .. hostRefs], (objs, tx) =>
        {
            var p = objs[0];
            var hosts = objs.Skip(1).ToList();
            var cpuInfo = CpuInfo(hosts);
            var restrictions = HostLicense.PoolRestrictions(hosts.Select(h => h.Get(XenApi.Host.LicenseParams)));
            upgrading = RollingUpgrade.InProgress(hosts);
            var other = p.Get(XenApi.Pool.OtherConfig);
            if (SameMap(p.Get(XenApi.Pool.CpuInfo), cpuInfo) && SameMap(p.Get(XenApi.Pool.Restrictions), restrictions)
                && other.ContainsKey(RollingUpgrade.InProgressKey) == upgrading && p.Get(XenApi.Pool.TlsVerificationEnabled))
            {
                return;
            }

            var updated = p.Clone();
            updated.Set(XenApi.Pool.CpuInfo, cpuInfo);
            updated.Set(XenApi.Pool.Restrictions, restrictions);
            // The pool's hosts check one another's certificates from its creation (TlsVerificationMethods).
            updated.Set(XenApi.Pool.TlsVerificationEnabled, true);
            var changed = other.ToDictionary(StringComparer.Ordinal);
            if (upgrading)
            {
                changed[RollingUpgrade.InProgressKey] = "true";
            }
            else
            {
                changed.Remove(RollingUpgrade.InProgressKey);
            }

            updated.Set(XenApi.Pool.OtherConfig, changed);
            tx.Update(updated);
            foreach (var host in hosts)
            {
                tx.Require(PoolKeys.Object(XenClasses.Host, host.Ref), host.ModRevision);
            }
        }, cancellationToken);
        return upgrading;
    }

    private static bool SameMap(IReadOnlyDictionary<string, string> stored, Dictionary<string, string> wanted) =>
        stored.Count == wanted.Count && wanted.All(kv => stored.TryGetValue(kv.Key, out var v) && v == kv.Value);
}
