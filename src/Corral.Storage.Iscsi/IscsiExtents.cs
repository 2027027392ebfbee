using System.Globalization;
using System.Text.Json;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Storage.Iscsi;

/// <summary>
/// The SR's extent map in the pool database: the SR record's <c>sm_config:corral-extents</c>, a JSON object from VDI
/// uuid to <c>offset+size</c>. Every change is one transaction guarded by the SR record's revision
/// (<see cref="IPoolDatabase.UpdateAsync"/>), so two hosts allocating at once never get the same bytes: the loser re-reads
/// and picks again. The on-LUN metadata is written after, from the VDI records; on SR.introduce the map is rebuilt
/// from it (<see cref="AdoptAsync"/>).
/// </summary>
public sealed class IscsiExtents(Func<IPoolDatabase> database)
{
    public const string Key = "corral-extents";

    private const string PartialPrefix = "partial-";

    /// <summary>An extent for <paramref name="vdiUuid"/> of <paramref name="size"/> bytes (aligned up), first fit; the one it has if repeated.</summary>
    public async Task<(long Offset, long Size)> AllocateAsync(string srUuid, string vdiUuid, long size, long lunSize, CancellationToken cancellationToken)
    {
        var length = AlignUp(size);
        (long, long) result = default;
        await UpdateAsync(srUuid, map =>
        {
            if (map.TryGetValue(vdiUuid, out var existing))
            {
                result = existing;
                return false;
            }

            var offset = IscsiLunLayout.MetadataArea;
            foreach (var (start, taken) in map.Values.OrderBy(e => e.Offset))
            {
                if (start - offset >= length)
                {
                    break;
                }

                offset = Math.Max(offset, start + taken);
            }

            if (offset + length > lunSize)
            {
                throw SrBackend.Failure(44, "There is insufficient space", $"no free extent of {length} bytes on the LUN");
            }

            map[vdiUuid] = result = (offset, length);
            return true;
        }, cancellationToken);
        return result;
    }

    /// <summary>
    /// Grows an extent in place to <paramref name="size"/> (aligned up), or leaves it as it is when it is that large
    /// already; null, changing nothing, when the bytes after it are not free.
    /// </summary>
    public async Task<(long Offset, long Size)?> TryGrowAsync(string srUuid, string vdiUuid, long size, long lunSize, CancellationToken cancellationToken)
    {
        var length = AlignUp(size);
        (long, long)? result = null;
        await UpdateAsync(srUuid, map =>
        {
            result = null;
            var (offset, current) = map.TryGetValue(vdiUuid, out var e) ? e : throw SrBackend.Failure(46, "The VDI is not available", $"{vdiUuid} has no extent");
            var next = map.Where(kv => kv.Key != vdiUuid && kv.Value.Offset >= offset + current).Select(kv => kv.Value.Offset).DefaultIfEmpty(lunSize).Min();
            if (offset + length > next && length > current)
            {
                return false;
            }

            map[vdiUuid] = (offset, Math.Max(current, length));
            result = map[vdiUuid];
            return length > current;
        }, cancellationToken);
        return result;
    }

    public Task FreeAsync(string srUuid, string vdiUuid, CancellationToken cancellationToken) =>
        UpdateAsync(srUuid, map => map.Remove(vdiUuid), cancellationToken);

    /// <summary>
    /// The key of an extent being filled for <paramref name="vdiUuid"/> (a snapshot's copy, a resize's move): a scan
    /// never adopts it, and <see cref="ReplaceAsync"/> makes it the VDI's in one step.
    /// </summary>
    public static string PartialKey(string vdiUuid) => PartialPrefix + vdiUuid;

    /// <summary>Whether the map's key is a VDI's (not a shared volume's, not a partial extent's).</summary>
    public static bool IsVdi(string key) => !SharedVolume.Names.Contains(key) && !key.StartsWith(PartialPrefix, StringComparison.Ordinal);

    /// <summary>
    /// The partial extent of <paramref name="vdiUuid"/> becomes its extent, in one transaction; the extent the VDI had
    /// before, if any, is freed by it. Repeated once done, it returns the VDI's extent and changes nothing.
    /// </summary>
    public async Task<(long Offset, long Size)> ReplaceAsync(string srUuid, string vdiUuid, CancellationToken cancellationToken)
    {
        (long, long)? result = null;
        await UpdateAsync(srUuid, map =>
        {
            if (map.Remove(PartialKey(vdiUuid), out var filled))
            {
                map[vdiUuid] = filled;
                result = filled;
                return true;
            }

            result = map.TryGetValue(vdiUuid, out var existing) ? existing : null;
            return false;
        }, cancellationToken);
        return result ?? throw SrBackend.Failure(46, "The VDI is not available", $"{vdiUuid} has no extent");
    }

    /// <summary>The extent under <paramref name="key"/>, or null.</summary>
    public async Task<(long Offset, long Size)?> FindAsync(string srUuid, string key, CancellationToken cancellationToken) =>
        (await ReadAsync(srUuid, cancellationToken)).TryGetValue(key, out var extent) ? extent : null;

    /// <summary>Records extents found in the LUN's metadata that the map lacks (an introduced SR), unless they overlap one it has.</summary>
    public Task AdoptAsync(string srUuid, IEnumerable<(string Uuid, long Offset, long Size)> found, CancellationToken cancellationToken)
    {
        var list = found.ToList();
        return UpdateAsync(srUuid, map =>
        {
            var changed = false;
            foreach (var (uuid, offset, size) in list.Where(f => !map.ContainsKey(f.Uuid)))
            {
                if (!map.Values.Any(e => offset < e.Offset + e.Size && e.Offset < offset + size))
                {
                    map[uuid] = (offset, size);
                    changed = true;
                }
            }

            return changed;
        }, cancellationToken);
    }

    /// <summary>The map as the SR record holds it now.</summary>
    public async Task<IReadOnlyDictionary<string, (long Offset, long Size)>> ReadAsync(string srUuid, CancellationToken cancellationToken)
    {
        var sr = await database().FindByUuidAsync(XenClasses.SR, srUuid, cancellationToken) ?? throw new XenApiException(ErrorCodes.UuidInvalid, "SR", srUuid);
        return Parse(sr.Get(XenApi.SR.SmConfig).GetValueOrDefault(Key));
    }

    private async Task UpdateAsync(string srUuid, Func<Dictionary<string, (long Offset, long Size)>, bool> change, CancellationToken cancellationToken)
    {
        var sr = await database().FindByUuidAsync(XenClasses.SR, srUuid, cancellationToken) ?? throw new XenApiException(ErrorCodes.UuidInvalid, "SR", srUuid);
        await database().UpdateAsync([(XenClasses.SR, sr.Ref)], (objs, tx) =>
        {
            var config = new Dictionary<string, string>(objs[0].Get(XenApi.SR.SmConfig), StringComparer.Ordinal);
            var map = Parse(config.GetValueOrDefault(Key));
            if (change(map))
            {
                var updated = objs[0].Clone();
                config[Key] = JsonSerializer.Serialize(map.OrderBy(kv => kv.Value.Offset).ToDictionary(kv => kv.Key,
                    kv => $"{kv.Value.Offset.ToString(CultureInfo.InvariantCulture)}+{kv.Value.Size.ToString(CultureInfo.InvariantCulture)}"));
                updated.Set(XenApi.SR.SmConfig, config);
                tx.Update(updated);
            }
        }, cancellationToken);
    }

    private static Dictionary<string, (long Offset, long Size)> Parse(string? json)
    {
        var map = new Dictionary<string, (long Offset, long Size)>(StringComparer.Ordinal);
        if (string.IsNullOrEmpty(json))
        {
            return map;
        }

        foreach (var (uuid, extent) in JsonSerializer.Deserialize<Dictionary<string, string>>(json) ?? [])
        {
            if (IscsiLunLayout.ParseLocation($"{uuid}.{extent}") is { } e)
            {
                map[uuid] = (e.Offset, e.Size);
            }
        }

        return map;
    }

    private static long AlignUp(long size) => (Math.Max(size, 1) + IscsiLunLayout.Alignment - 1) / IscsiLunLayout.Alignment * IscsiLunLayout.Alignment;
}
