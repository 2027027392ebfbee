using System.Globalization;
using Corral.Model;

namespace Corral.Api.Xva;

/// <summary>A disk an archive holds after <c>ova.xml</c>: its id and its size (the exported VDI's virtual_size).</summary>
public sealed record XvaImportDisk(string Id, long VirtualSize);

/// <summary>
/// An archive's objects by class, and the disks that follow <c>ova.xml</c>, as xapi's import finds them
/// (<c>non_cdrom_vdis</c>): the VDIs of VBDs that are not CD drives, in SRs that are not ISO libraries, and suspend
/// images; streamed in the order of their ids.
/// </summary>
public sealed record XvaImportPlan(
    IReadOnlyDictionary<string, XvaObject> ById,
    IReadOnlyList<XvaObject> Vms,
    IReadOnlyList<XvaObject> Vbds,
    IReadOnlyList<XvaObject> Vifs,
    IReadOnlyList<XvaObject> Vdis,
    IReadOnlyList<XvaObject> Vtpms,
    IReadOnlyList<XvaImportDisk> Disks)
{
    public static XvaImportPlan Of(XvaHeader header)
    {
        ArgumentNullException.ThrowIfNull(header);
        var byId = new Dictionary<string, XvaObject>(StringComparer.Ordinal);
        foreach (var obj in header.Objects)
        {
            byId.TryAdd(obj.Id, obj);
        }

        List<XvaObject> OfClass(string cls) => header.Objects.Where(o => string.Equals(o.Class, cls, StringComparison.OrdinalIgnoreCase)).ToList();
        var vms = OfClass(XenClasses.VM);
        if (vms.Count == 0)
        {
            throw new XenApiException(ErrorCodes.ImportErrorGeneric, "The archive holds no VM");
        }

        var vbds = OfClass(XenClasses.VBD);
        var vdis = OfClass(XenClasses.VDI);
        var streamed = new HashSet<string>(StringComparer.Ordinal);
        foreach (var vbd in vbds.Where(v => !string.Equals(XvaImportRecords.Text(v.Snapshot, "type"), "CD", StringComparison.OrdinalIgnoreCase)))
        {
            var vdiId = XvaImportRecords.Text(vbd.Snapshot, "VDI");
            if (vdiId.Length == 0 || vdiId == OpaqueRef.Null)
            {
                continue;
            }

            var vdi = byId.GetValueOrDefault(vdiId) ?? throw new XenApiException(ErrorCodes.ImportErrorFailedToFindObject, vdiId);
            var srId = XvaImportRecords.Text(vdi.Snapshot, "SR");
            var sr = byId.GetValueOrDefault(srId) ?? throw new XenApiException(ErrorCodes.ImportErrorFailedToFindObject, srId);
            if (XvaImportRecords.Text(sr.Snapshot, "content_type") != "iso")
            {
                streamed.Add(vdiId);
            }
        }

        var disks = vdis.Where(v => streamed.Contains(v.Id) || XvaImportRecords.Text(v.Snapshot, "type") == "suspend")
            .Select(v => new XvaImportDisk(v.Id, Size(v)))
            .OrderBy(d => d.Id, StringComparer.Ordinal)
            .ToList();
        return new XvaImportPlan(byId, vms, vbds, OfClass(XenClasses.VIF), vdis, OfClass(XenApi.VTPM.ClassName), disks);
    }

    private static long Size(XvaObject vdi) =>
        long.TryParse(XvaImportRecords.Text(vdi.Snapshot, "virtual_size"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var size) && size >= 0
            ? size
            : throw new XenApiException(ErrorCodes.ImportErrorGeneric, $"VDI {vdi.Id} has no valid virtual_size");
}
