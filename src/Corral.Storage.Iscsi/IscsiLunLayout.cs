using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Corral.Storage.Iscsi;

/// <summary>
/// The LUN's layout (docs/storage.md): the first <see cref="MetadataArea"/> bytes hold the SR's metadata in two slots
/// written in turn, each a header line (magic, generation, length, SHA-256 of the JSON) then the JSON of
/// <see cref="SrMetadataFile"/>; a reader takes the valid slot of the highest generation, so a write torn by a crash
/// leaves the previous one. VDIs are extents after the area, aligned to <see cref="Alignment"/>.
/// </summary>
public static class IscsiLunLayout
{
    public const long Alignment = 1L << 20;
    public const long SlotSize = 2L << 20;
    public const long MetadataArea = 2 * SlotSize;
    private const string Magic = "CORRAL-ISCSI-SR";

    /// <summary>The metadata with the generation it was written at, or null when neither slot holds any.</summary>
    /// <exception cref="InvalidDataException">A valid slot holds something that is not an SR's metadata.</exception>
    public static async Task<(SrMetadata Metadata, long Generation)?> ReadAsync(IscsiLocation target, int lun, CancellationToken cancellationToken)
    {
        var area = await IscsiLunIo.ReadAsync(target, lun, 0, MetadataArea, cancellationToken);
        (string Json, long Generation)? best = null;
        for (var slot = 0; slot < 2; slot++)
        {
            if (ParseSlot(area.AsSpan((int)(slot * SlotSize), (int)SlotSize)) is { } found && (best is null || found.Generation > best.Value.Generation))
            {
                best = found;
            }
        }

        return best is { } b ? (SrMetadataFile.Parse(b.Json, target.ToString()), b.Generation) : null;
    }

    /// <summary>Writes the metadata at the next generation, into the slot the current one is not in.</summary>
    public static async Task WriteAsync(IscsiLocation target, int lun, SrMetadata metadata, CancellationToken cancellationToken)
    {
        var generation = (await TryReadGenerationAsync(target, lun, cancellationToken) ?? 0) + 1;
        var json = SrMetadataFile.Serialize(metadata);
        var header = Encoding.ASCII.GetBytes(
            $"{Magic} {generation.ToString(CultureInfo.InvariantCulture)} {json.Length.ToString(CultureInfo.InvariantCulture)} {Convert.ToHexStringLower(SHA256.HashData(json))}\n");
        if (header.Length + json.Length > SlotSize)
        {
            throw SrBackend.Failure(44, "There is insufficient space", "the SR's metadata outgrew its slot on the LUN");
        }

        var slot = new byte[SlotSize];
        header.CopyTo(slot, 0);
        json.CopyTo(slot, header.Length);
        await IscsiLunIo.WriteAsync(target, lun, generation % 2 * SlotSize, slot, cancellationToken);
    }

    /// <summary>Zeroes the metadata area: the LUN holds no SR any more (SR.destroy).</summary>
    public static Task WipeAsync(IscsiLocation target, int lun, CancellationToken cancellationToken) =>
        IscsiLunIo.WriteAsync(target, lun, 0, new byte[MetadataArea], cancellationToken);

    private static async Task<long?> TryReadGenerationAsync(IscsiLocation target, int lun, CancellationToken cancellationToken)
    {
        try
        {
            return (await ReadAsync(target, lun, cancellationToken))?.Generation;
        }
        catch (InvalidDataException)
        {
            return null;
        }
    }

    private static (string Json, long Generation)? ParseSlot(ReadOnlySpan<byte> slot)
    {
        var newline = slot[..Math.Min(slot.Length, 256)].IndexOf((byte)'\n');
        if (newline < 0)
        {
            return null;
        }

        var fields = Encoding.ASCII.GetString(slot[..newline]).Split(' ');
        if (fields.Length != 4 || fields[0] != Magic
            || !long.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out var generation)
            || !int.TryParse(fields[2], NumberStyles.None, CultureInfo.InvariantCulture, out var length)
            || length > slot.Length - newline - 1)
        {
            return null;
        }

        var json = slot.Slice(newline + 1, length);
        return Convert.ToHexStringLower(SHA256.HashData(json)) == fields[3] ? (Encoding.UTF8.GetString(json), generation) : null;
    }

    /// <summary>A VDI's location: <c>&lt;uuid&gt;.&lt;offset&gt;+&lt;size&gt;</c>, so the extent travels with the record and the metadata.</summary>
    public static string Location(string vdiUuid, long offset, long size) =>
        $"{vdiUuid}.{offset.ToString(CultureInfo.InvariantCulture)}+{size.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>Reads a location made by <see cref="Location"/>; INVALID_VALUE-worthy input gives null.</summary>
    public static (string Uuid, long Offset, long Size)? ParseLocation(string location)
    {
        var dot = location.LastIndexOf('.');
        var plus = location.LastIndexOf('+');
        return dot > 0 && plus > dot
               && long.TryParse(location.AsSpan(dot + 1, plus - dot - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var offset)
               && long.TryParse(location.AsSpan(plus + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var size)
               && offset >= MetadataArea && size > 0
            ? (location[..dot], offset, size)
            : null;
    }
}
