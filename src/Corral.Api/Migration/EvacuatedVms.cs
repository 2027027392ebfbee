using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Api.Migration;

/// <summary>
/// The VMs an evacuation moved off a host, comma-separated references in <c>host.other_config</c> under XenCenter's own
/// key for maintenance mode, so that a XenCenter-like console offers to bring the same VMs back.
/// <c>host.evacuate</c> starts the list afresh, the evacuation adds each VM it moved, and
/// <c>host.restore_evacuated_vms</c> keeps only those that did not come back.
/// </summary>
public static class EvacuatedVms
{
    public const string Key = "MAINTENANCE_MODE_EVACUATED_VMS_MIGRATED";

    public static IReadOnlyList<string> Of(XenObject host) =>
        host.Get(XenApi.Host.OtherConfig).GetValueOrDefault(Key) is { Length: > 0 } list
            ? list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) : [];

    /// <summary>Rewrites the host's list (removing the key when it becomes empty); writes nothing when it does not change.</summary>
    public static Task<long> ChangeAsync(IPoolDatabase database, string hostRef, Func<IReadOnlyList<string>, IEnumerable<string>> change,
        CancellationToken cancellationToken) =>
        database.UpdateAsync([(XenClasses.Host, hostRef)], (objs, tx) =>
        {
            var list = change(Of(objs[0])).Distinct(StringComparer.Ordinal).ToList();
            var value = list.Count == 0 ? null : string.Join(',', list);
            var otherConfig = objs[0].Get(XenApi.Host.OtherConfig).ToDictionary();
            if (otherConfig.GetValueOrDefault(Key) == value)
            {
                return;
            }

            if (value is null)
            {
                otherConfig.Remove(Key);
            }
            else
            {
                otherConfig[Key] = value;
            }

            var h = objs[0].Clone();
            h.Set(XenApi.Host.OtherConfig, otherConfig);
            tx.Update(h);
        }, cancellationToken);
}
