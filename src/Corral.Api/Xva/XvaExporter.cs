using System.Globalization;
using Corral.Api.Methods;
using Corral.Api.Sessions;
using Corral.Model;
using Corral.Platform;
using Corral.PoolDatabase;
using Corral.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Corral.Api.Xva;

/// <summary>One disk an export streams: its id in the archive, its VDI, and where its volume is on this host.</summary>
public sealed record XvaDisk(string Id, string VdiRef, string SrRef, long VirtualSize);

/// <summary>What an export of one VM holds: <c>ova.xml</c>'s objects and the disks that follow it.</summary>
public sealed record XvaExportPlan(XenObject Vm, XvaHeader Header, IReadOnlyList<XvaDisk> Disks)
{
    public IReadOnlyList<string> SrRefs => Disks.Select(d => d.SrRef).Distinct(StringComparer.Ordinal).ToList();
}

/// <summary>
/// VM export as xapi's export.ml does it: the VM, its VBDs, VIFs, their networks, VDIs and SRs, and its VTPMs (with
/// their contents, which only an export carries) under fresh ids (<c>Ref:0</c>...), every reference to something left
/// out made null; the VM exported halted and outside any snapshot tree. Then each disk (CD drives and ISO SRs' images
/// excepted) in the order of its id, read through <c>qemu-img</c> as a raw image.
/// </summary>
public sealed class XvaExporter(IPoolDatabase database, SrDrivers drivers, IOptions<ApiOptions> options, ILogger<XvaExporter> logger)
{
    public async Task<XvaExportPlan> PlanAsync(string vmRef, CancellationToken cancellationToken)
    {
        var vm = await database.GetArgumentAsync(XenClasses.VM, vmRef, cancellationToken);
        var table = new Dictionary<string, string>(StringComparer.Ordinal);
        void Add(string reference)
        {
            if (OpaqueRef.IsWellFormed(reference) && reference != OpaqueRef.Null && !table.ContainsKey(reference))
            {
                table[reference] = "Ref:" + table.Count.ToString(CultureInfo.InvariantCulture);
            }
        }

        Add(vm.Ref);
        var vifs = await ReadAllAsync(XenClasses.VIF, vm.Get(XenApi.VM.VIFs), cancellationToken);
        var vbds = await ReadAllAsync(XenClasses.VBD, vm.Get(XenApi.VM.VBDs), cancellationToken);
        var networks = new List<XenObject>();
        foreach (var vif in vifs)
        {
            Add(vif.Ref);
            Add(vif.Get(XenApi.VIF.Network));
        }

        var vdis = new List<XenObject>();
        foreach (var vbd in vbds)
        {
            Add(vbd.Ref);
            if (!vbd.Get(XenApi.VBD.Empty) && await database.TryGetAsync(XenClasses.VDI, vbd.Get(XenApi.VBD.VDI), cancellationToken) is { } vdi)
            {
                Add(vdi.Ref);
                Add(vdi.Get(XenApi.VDI.SR));
                vdis.Add(vdi);
            }
        }

        var vtpms = await VtpmRecords.ReadAsync(database, vm, cancellationToken);
        foreach (var vtpm in vtpms)
        {
            Add(vtpm.Vtpm.Ref);
        }

        networks.AddRange(await ReadAllAsync(XenClasses.Network, vifs.Select(v => v.Get(XenApi.VIF.Network)).Distinct(), cancellationToken));
        var srs = await ReadAllAsync(XenClasses.SR, vdis.Select(v => v.Get(XenApi.VDI.SR)).Distinct(), cancellationToken);
        var objects = new List<XvaObject> { Object(VmRecord(vm, table), vm, table) };
        objects.AddRange(vbds.Select(vbd => Object(Record(vbd, table, ("currently_attached", false), ("metrics", OpaqueRef.Null)), vbd, table)));
        objects.AddRange(vifs.Select(vif => Object(Record(vif, table, ("currently_attached", false), ("metrics", OpaqueRef.Null)), vif, table)));
        objects.AddRange(networks.Select(n => Object(Record(n, table), n, table)));
        objects.AddRange(vdis.DistinctBy(v => v.Ref).Select(v => Object(Record(v, table), v, table)));
        objects.AddRange(srs.Select(sr => Object(Record(sr, table), sr, table)));
        objects.AddRange(vtpms.Select(v => new XvaObject(XenApi.VTPM.ClassName, table[v.Vtpm.Ref], VtpmRecord(v, table))));

        // xapi streams disks, not CD drives or ISO libraries' images, in the order of their ids as strings.
        var disks = new List<XvaDisk>();
        foreach (var vbd in vbds.Where(v => v.Get(XenApi.VBD.Type) != VbdType.CD && !v.Get(XenApi.VBD.Empty)))
        {
            var vdi = vdis.FirstOrDefault(v => v.Ref == vbd.Get(XenApi.VBD.VDI));
            var sr = srs.FirstOrDefault(s => s.Ref == vdi?.Get(XenApi.VDI.SR));
            if (vdi is not null && sr is not null && sr.Get(XenApi.SR.ContentType) != "iso" && disks.All(d => d.VdiRef != vdi.Ref))
            {
                disks.Add(new XvaDisk(table[vdi.Ref], vdi.Ref, sr.Ref, vdi.Get(XenApi.VDI.VirtualSize)));
            }
        }

        var hostname = (await database.TryGetAsync(XenClasses.Host, options.Value.HostRef, cancellationToken))?.Get(XenApi.Host.Hostname) ?? Environment.MachineName;
        var header = new XvaHeader(XvaVersion.Current(hostname), objects);
        return new XvaExportPlan(vm, header, disks.OrderBy(d => d.Id, StringComparer.Ordinal).ToList());
    }

    /// <summary>Writes the archive to <paramref name="output"/>; <paramref name="progress"/> hears the fraction of the disks' bytes done.</summary>
    public async Task WriteAsync(XvaExportPlan plan, Stream output, XvaCompression compression, Action<double> progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(plan);
        await using var writer = new XvaWriter(output, compression);
        await writer.WriteHeaderAsync(plan.Header, cancellationToken);
        var total = Math.Max(1, plan.Disks.Sum(d => d.VirtualSize));
        long before = 0;
        foreach (var disk in plan.Disks)
        {
            await WriteDiskAsync(writer, disk, done => progress((double)(before + done) / total), cancellationToken);
            before += disk.VirtualSize;
        }
    }

    /// <summary>The volume read as a sparse raw image next to it (in the SR's directory, a name a scan never adopts), then streamed.</summary>
    private async Task WriteDiskAsync(XvaWriter writer, XvaDisk disk, Action<long> progress, CancellationToken cancellationToken)
    {
        var vdi = await database.GetAsync(XenClasses.VDI, disk.VdiRef, cancellationToken);
        var sr = await database.GetAsync(XenClasses.SR, disk.SrRef, cancellationToken);
        var directory = await SrDirectories.OnHostAsync(database, sr.Ref, options.Value.HostRef, cancellationToken)
                        ?? throw new XenApiException(ErrorCodes.SrHasNoPbds, sr.Ref);
        var (path, format) = drivers.Get(sr.Get(XenApi.SR.Type)).Resolve(directory, vdi.Get(XenApi.VDI.Location));
        var raw = Path.Combine(SrDirectories.ScratchFor(directory), $".xva-export-{Guid.NewGuid():N}.raw");
        try
        {
            await QemuImgAsync(cancellationToken, "convert", "-U", "-f", format, "-O", "raw", path, raw);
            await using var image = new FileStream(raw, FileMode.Open, FileAccess.ReadWrite, FileShare.Read, 1 << 16, useAsync: true);
            // The archive holds virtual_size bytes, as ova.xml's VDI says (its import reads that many).
            if (image.Length < disk.VirtualSize)
            {
                image.SetLength(disk.VirtualSize);
            }

            logger.LogInformation(XvaEvents.DiskExporting, "Exporting VDI {Vdi} ({Size} bytes) as {Id}", vdi.Uuid, disk.VirtualSize, disk.Id);
            await writer.WriteDiskAsync(disk.Id, image, disk.VirtualSize, cancellationToken, progress);
        }
        finally
        {
            File.Delete(raw);
        }
    }

    internal static async Task QemuImgAsync(CancellationToken cancellationToken, params string[] arguments)
    {
        try
        {
            await CommandRunner.RunCheckedAsync("qemu-img", arguments, cancellationToken);
        }
        catch (CommandFailedException ex)
        {
            throw new XenApiException(ErrorCodes.SrBackendFailure, ex.Result.ExitCode.ToString(CultureInfo.InvariantCulture),
                ex.Result.StandardOutput.Trim(), ex.Result.StandardError.Trim());
        }
    }

    private async Task<List<XenObject>> ReadAllAsync(string className, IEnumerable<string> refs, CancellationToken cancellationToken)
    {
        var objects = new List<XenObject>();
        foreach (var reference in refs)
        {
            if (await database.TryGetAsync(className, reference, cancellationToken) is { } obj)
            {
                objects.Add(obj);
            }
        }

        return objects;
    }

    private static XvaObject Object(Dictionary<string, object?> record, XenObject obj, Dictionary<string, string> table) =>
        new(obj.Class, table[obj.Ref], record);

    /// <summary>The VM as a plain export has it (make_vm without snapshot metadata or power state).</summary>
    private static Dictionary<string, object?> VmRecord(XenObject vm, Dictionary<string, string> table) => Record(vm, table,
        ("power_state", "Halted"), ("suspend_VDI", OpaqueRef.Null), ("is_a_snapshot", false), ("snapshot_of", OpaqueRef.Null),
        ("snapshots", new List<object?>()), ("snapshot_time", XenDateTime.Epoch), ("transportable_snapshot_id", ""), ("parent", OpaqueRef.Null),
        ("protection_policy", OpaqueRef.Null));

    /// <summary>The object's full record, every reference turned into its export id or null (and sets filtered), then <paramref name="overrides"/>.</summary>
    private static Dictionary<string, object?> Record(XenObject obj, Dictionary<string, string> table, params (string Field, object? Value)[] overrides)
    {
        var record = obj.ToRecord();
        foreach (var field in obj.Schema.Fields)
        {
            record[field.Name] = field.Type switch
            {
                FieldType.RefTo => table.GetValueOrDefault((string?)record[field.Name] ?? "", OpaqueRef.Null),
                FieldType.SetOf { Element: FieldType.RefTo } => ((IEnumerable<object?>?)record[field.Name] ?? [])
                    .Select(r => table.GetValueOrDefault((string?)r ?? "")).Where(r => r is not null).Cast<object?>().ToList(),
                _ => record[field.Name],
            };
        }

        foreach (var (field, value) in overrides)
        {
            record[field] = value;
        }

        return record;
    }

    /// <summary>xapi's hand-made VTPM record (importexport.ml's <c>vtpm'</c>), which alone carries the TPM's contents.</summary>
    private static Dictionary<string, object?> VtpmRecord(VtpmRecords.Stored vtpm, Dictionary<string, string> table) => new(StringComparer.Ordinal)
    {
        [XvaVtpm.VmKey] = table.GetValueOrDefault(vtpm.Vtpm.Get(XenApi.VTPM.VM), OpaqueRef.Null),
        [XvaVtpm.UuidKey] = vtpm.Vtpm.Uuid,
        [XvaVtpm.IsUniqueKey] = vtpm.Vtpm.Get(XenApi.VTPM.IsUnique),
        [XvaVtpm.IsProtectedKey] = vtpm.Vtpm.Get(XenApi.VTPM.IsProtected),
        [XvaVtpm.ContentKey] = vtpm.Contents,
    };
}
