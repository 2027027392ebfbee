using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.Extensions.Logging;

namespace Corral.Api.Xva;

/// <summary>
/// The imported VMs' devices, as import.ml makes them: networks matched by name, then by bridge, else created (xapi:
/// "whether networks are the same is then under the control of the user"); VBDs onto the new VDIs, a CD drive onto an
/// ISO of the same location in one of this pool's ISO libraries or else empty; VIFs; VTPMs with their contents.
/// </summary>
internal sealed class XvaImportDevices(IPoolDatabase database, ILogger logger)
{
    public async Task CreateAsync(PoolTransaction tx, XvaImportPlan plan, XvaImportOptions import, Dictionary<string, string> table, CancellationToken cancellationToken)
    {
        await NetworksAsync(tx, plan, import, table, cancellationToken);
        foreach (var vbd in plan.Vbds)
        {
            var vm = VmOf(vbd, table);
            var vdiId = XvaImportRecords.Text(vbd.Snapshot, "VDI");
            var isCd = string.Equals(XvaImportRecords.Text(vbd.Snapshot, "type"), "CD", StringComparison.OrdinalIgnoreCase);
            var vdiRef = table.GetValueOrDefault(vdiId) ?? (isCd ? await IsoAsync(plan, vdiId, cancellationToken) : null);
            if (vdiRef is null && !isCd && !string.Equals(XvaImportRecords.Text(vbd.Snapshot, "type"), "Floppy", StringComparison.OrdinalIgnoreCase))
            {
                // xapi omits a disk whose VDI it did not import (an ISO attached as a disk).
                continue;
            }

            XvaImportRecords.CreateVbd(tx, vbd.Snapshot, vm, vdiRef, await KeptUuidAsync(XenClasses.VBD, vbd, import, cancellationToken));
        }

        foreach (var vif in plan.Vifs)
        {
            var network = table.GetValueOrDefault(XvaImportRecords.Text(vif.Snapshot, "network"))
                          ?? throw new XenApiException(ErrorCodes.ImportErrorFailedToFindObject, XvaImportRecords.Text(vif.Snapshot, "network"));
            XvaImportRecords.CreateVif(tx, vif.Snapshot, VmOf(vif, table), network, import.Restore, await KeptUuidAsync(XenClasses.VIF, vif, import, cancellationToken));
        }

        foreach (var vtpm in plan.Vtpms)
        {
            var vmId = XvaImportRecords.Text(vtpm.Snapshot, XvaVtpm.VmKey);
            var vm = table.GetValueOrDefault(vmId) ?? throw new XenApiException(ErrorCodes.ImportErrorFailedToFindObject, vmId);
            var uuid = XvaImportRecords.Text(vtpm.Snapshot, XvaVtpm.UuidKey);
            if (import.Restore && await database.FindByUuidAsync(XenApi.VTPM.ClassName, uuid, cancellationToken) is not null)
            {
                throw new XenApiException(ErrorCodes.ImportErrorGeneric, $"A VTPM with UUID {uuid} already exists");
            }

            XvaImportRecords.CreateVtpm(tx, vtpm.Snapshot, vm, import.Restore);
        }
    }

    private async Task NetworksAsync(PoolTransaction tx, XvaImportPlan plan, XvaImportOptions import, Dictionary<string, string> table, CancellationToken cancellationToken)
    {
        var existing = await database.GetAllAsync(XenClasses.Network, cancellationToken);
        var made = new List<XenObject>();
        foreach (var network in plan.ById.Values.Where(o => string.Equals(o.Class, XenClasses.Network, StringComparison.OrdinalIgnoreCase)))
        {
            var name = XvaImportRecords.Text(network.Snapshot, "name_label");
            var bridge = XvaImportRecords.Text(network.Snapshot, "bridge");
            var match = existing.FirstOrDefault(n => n.Get(XenApi.Network.NameLabel) == name)
                        ?? existing.FirstOrDefault(n => bridge.Length > 0 && n.Get(XenApi.Network.Bridge) == bridge)
                        ?? made.FirstOrDefault(n => n.Get(XenApi.Network.NameLabel) == name);
            if (match is null)
            {
                match = XvaImportRecords.CreateNetwork(tx, network.Snapshot, [.. existing, .. made], import.TaskRef);
                made.Add(match);
            }

            logger.LogInformation(XvaEvents.NetworkMatched, "Exported network {Name} ({Bridge}) is network {Network} here", name, bridge, match.Get(XenApi.Network.NameLabel));
            table[network.Id] = match.Ref;
        }
    }

    /// <summary>An ISO of the same location in one of this pool's ISO libraries (xapi: best effort), or null to eject.</summary>
    private async Task<string?> IsoAsync(XvaImportPlan plan, string vdiId, CancellationToken cancellationToken)
    {
        if (plan.ById.GetValueOrDefault(vdiId) is not { } vdi)
        {
            return null;
        }

        var location = XvaImportRecords.Text(vdi.Snapshot, "location");
        var isoSrs = (await database.GetAllAsync(XenClasses.SR, cancellationToken)).Where(s => s.Get(XenApi.SR.ContentType) == "iso").Select(s => s.Ref).ToHashSet();
        return (await database.GetAllAsync(XenClasses.VDI, cancellationToken))
            .FirstOrDefault(v => location.Length > 0 && v.Get(XenApi.VDI.Location) == location && isoSrs.Contains(v.Get(XenApi.VDI.SR)))?.Ref;
    }

    /// <summary>restore=true keeps a device's uuid unless this pool already has it (then xapi would reuse that device; a new one is made instead).</summary>
    private async Task<string?> KeptUuidAsync(string className, XvaObject obj, XvaImportOptions import, CancellationToken cancellationToken)
    {
        var uuid = XvaImportRecords.Text(obj.Snapshot, "uuid");
        return import.Restore && OpaqueRef.IsUuid(uuid) && await database.FindByUuidAsync(className, uuid, cancellationToken) is null ? uuid : null;
    }

    private static string VmOf(XvaObject device, Dictionary<string, string> table)
    {
        var vmId = XvaImportRecords.Text(device.Snapshot, "VM");
        return table.GetValueOrDefault(vmId) ?? throw new XenApiException(ErrorCodes.ImportErrorFailedToFindObject, vmId);
    }
}
