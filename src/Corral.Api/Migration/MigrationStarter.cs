using System.Globalization;
using Corral.Api.AllowedOperations;
using Corral.Api.Methods;
using Corral.Api.Operations;
using Corral.Api.Tasks;
using Corral.Model;
using Corral.PoolDatabase;
using Corral.Storage;

namespace Corral.Api.Migration;

/// <summary>
/// Starts a live migration: checks it can run (the VM running, the destination live, enabled, with room and the VM's
/// storage), records it (the record doubles as the VM's migration lock) and hands the two halves to the destination
/// (<c>vm.migrate_receive</c>) and the source (<c>vm.migrate_send</c>, which drives it). Used by <c>VM.pool_migrate</c>,
/// <c>VM.migrate_send</c> (with disks to move: storage migration) and host evacuation.
/// </summary>
public sealed class MigrationStarter(IPoolDatabase database, Placement placement, HostOperationQueue operations, TaskService tasks, SrDrivers drivers,
    OperationMarks marks)
{
    /// <summary>
    /// Checks the migration can start, records it and queues both halves; returns the source half's task, which ends
    /// with the migration. <paramref name="progressTaskRef"/> (a caller's task) gets the progress if given.
    /// </summary>
    /// <param name="vdiMap">VDI ref to SR ref: the disks to copy to another SR on the way (storage migration).</param>
    public async Task<string> StartAsync(string sessionRef, string vmRef, string hostRef, IReadOnlyDictionary<string, object?> options,
        string? progressTaskRef, CancellationToken cancellationToken, IReadOnlyDictionary<string, string>? vdiMap = null)
    {
        var (vm, _, disks) = await CheckAsync(vmRef, hostRef, vdiMap, cancellationToken, Forced(options));

        // The source's half runs under a task of its own, ended by the agent; the caller's task (an Async.* call's)
        // carries the progress and ends when this handler returns, as every Async.* call's does.
        var sendTask = await tasks.CreateAsync("VM.pool_migrate (source)", vmRef, cancellationToken);
        var taskRef = progressTaskRef ?? sendTask;
        var record = new MigrationRecord
        {
            Id = Guid.NewGuid().ToString("N"),
            VmRef = vmRef,
            SourceRef = vm.Get(XenApi.VM.ResidentOn),
            DestinationRef = hostRef,
            TaskRef = taskRef,
            DowntimeLimitMilliseconds = Option(options, "downtime_ms", 300),
            MaxBandwidthBytesPerSecond = Option(options, "bandwidth", 0),
            AutoConverge = !string.Equals(options.GetValueOrDefault("auto_converge") as string, "false", StringComparison.OrdinalIgnoreCase),
            Disks = disks,
            SourceTlsIdentity = await MigrationPeerIdentity.ReadAsync(database, vm.Get(XenApi.VM.ResidentOn), cancellationToken),
        };

        // One transaction takes the migration lock (the record must not exist) and records the migration in the VM's
        // current_operations, checked against the VM as it is then: a second migration (or any operation that may not
        // run beside one) loses here with xapi's OTHER_OPERATION_IN_PROGRESS.
        var operation = OperationOf(vdiMap);
        var check = await marks.VmRulesAsync(vm, operation, cancellationToken, strict: !Forced(options));
        await database.UpdateAsync([(XenClasses.VM, vmRef)], (objs, tx) =>
        {
            if (check(objs[0]) is { } refused)
            {
                throw refused.ToException();
            }

            tx.Require(record.Key, 0);
            tx.PutKey(record.Key, record.ToJson());
            var busy = objs[0].Clone();
            var ops = busy.Get(XenApi.VM.CurrentOperations).ToDictionary();
            ops[taskRef] = operation;
            busy.Set(XenApi.VM.CurrentOperations, ops);
            busy.Set(XenApi.VM.ScheduledToBeResidentOn, hostRef);
            tx.Update(busy);
        }, cancellationToken);

        var arguments = new Dictionary<string, string> { ["migration"] = record.Id };
        var receiveTask = await tasks.CreateAsync("VM.pool_migrate (destination)", vmRef, cancellationToken);
        await operations.SubmitAsync(HostOperationKinds.VmMigrateReceive, hostRef, vmRef, arguments, sessionRef, receiveTask, cancellationToken);
        await operations.SubmitAsync(HostOperationKinds.VmMigrateSend, record.SourceRef, vmRef, arguments, sessionRef, sendTask, cancellationToken);
        return sendTask;
    }

    /// <summary>
    /// Everything that must hold for the migration to start (<c>VM.assert_can_migrate</c>): returns the VM, the
    /// destination and the disks to move.
    /// </summary>
    /// <param name="vdiMap">Null for <c>VM.pool_migrate</c> (and evacuation), else <c>VM.migrate_send</c>'s map.</param>
    /// <param name="force"><c>options:force=true</c>: a VM marked not to migrate (platform nomigrate) migrates anyway.</param>
    public async Task<(XenObject Vm, XenObject Destination, IReadOnlyList<DiskMove> Disks)> CheckAsync(string vmRef, string hostRef,
        IReadOnlyDictionary<string, string>? vdiMap, CancellationToken cancellationToken, bool force = false)
    {
        var vm = await database.GetArgumentAsync(XenClasses.VM, vmRef, cancellationToken);
        var destination = await database.GetArgumentAsync(XenClasses.Host, hostRef, cancellationToken);
        // The VM's rules: its power state, a template or control domain, another operation in progress...
        await marks.AssertVmAsync(vm, OperationOf(vdiMap), cancellationToken, strict: !force);

        var sourceRef = vm.Get(XenApi.VM.ResidentOn);
        if (sourceRef == hostRef)
        {
            throw new XenApiException(ErrorCodes.OperationNotAllowed, "The VM already runs on that host");
        }

        var source = await database.TryGetAsync(XenClasses.Host, sourceRef, cancellationToken);
        if (source is null || !await placement.IsLiveAsync(source, cancellationToken))
        {
            throw new XenApiException(ErrorCodes.HostOffline, sourceRef);
        }

        if (await MigrationRecord.ReadAsync(database, vmRef, cancellationToken) is { } running)
        {
            throw new XenApiException(ErrorCodes.OtherOperationInProgress, XenClasses.VM, vmRef,
                running.Record.Disks.Count > 0 ? "migrate_send" : "pool_migrate", running.Record.TaskRef);
        }

        Placement.CheckLiveMigrationCompatible(vm, source, destination);
        // Storage is checked disk by disk below: a mapped disk need not be reachable from the destination yet.
        await placement.CheckHostAsync(vm, destination, cancellationToken, checkStorage: false);
        var disks = await PlanDisksAsync(vm, hostRef, vdiMap ?? new Dictionary<string, string>(), cancellationToken);
        return (vm, destination, disks);
    }

    /// <summary>
    /// The disks that move (those the map sends to another SR, which must be plugged on the destination and able to
    /// hold a new volume); every other disk must already be reachable from the destination.
    /// </summary>
    private async Task<IReadOnlyList<DiskMove>> PlanDisksAsync(XenObject vm, string hostRef, IReadOnlyDictionary<string, string> vdiMap,
        CancellationToken cancellationToken)
    {
        var moves = new List<DiskMove>();
        var mapped = new HashSet<string>(StringComparer.Ordinal);
        foreach (var vbdRef in vm.Get(XenApi.VM.VBDs))
        {
            var vbd = await database.TryGetAsync(XenClasses.VBD, vbdRef, cancellationToken);
            if (vbd is null || vbd.Get(XenApi.VBD.Empty) || OpaqueRef.IsNull(vbd.Get(XenApi.VBD.VDI)))
            {
                continue;
            }

            var vdi = await database.GetAsync(XenClasses.VDI, vbd.Get(XenApi.VBD.VDI), cancellationToken);
            var sr = await database.GetAsync(XenClasses.SR, vdi.Get(XenApi.VDI.SR), cancellationToken);
            if (vdiMap.TryGetValue(vdi.Ref, out var targetRef) && targetRef != sr.Ref)
            {
                mapped.Add(vdi.Ref);
                var target = await database.GetArgumentAsync(XenClasses.SR, targetRef, cancellationToken);
                if (vbd.Get(XenApi.VBD.Type) == VbdType.CD)
                {
                    throw new XenApiException(ErrorCodes.OperationNotAllowed, $"the CD in drive {vbd.Get(XenApi.VBD.Userdevice)} cannot be copied to another SR; eject it first");
                }

                if (!vbd.Get(XenApi.VBD.CurrentlyAttached))
                {
                    // Disks move by mirroring the running VM's writes: one that is not plugged into it has none to mirror.
                    throw new XenApiException(ErrorCodes.OperationNotAllowed,
                        $"the disk in device {vbd.Get(XenApi.VBD.Userdevice)} is not plugged into the running VM; plug it, or copy its VDI to the other SR");
                }

                if (vdi.Get(XenApi.VDI.Sharable) || vdi.Get(XenApi.VDI.VBDs).Count > 1)
                {
                    throw new XenApiException(ErrorCodes.VdiInUse, vdi.Ref, "migrate_send");
                }

                if (!drivers.Get(target.Get(XenApi.SR.Type)).SupportsVdiCreate)
                {
                    throw new XenApiException(ErrorCodes.SrOperationNotSupported, target.Ref);
                }

                if (!await placement.IsPluggedAsync(target, hostRef, cancellationToken))
                {
                    throw new XenApiException(ErrorCodes.VmRequiresSr, vm.Ref, target.Ref);
                }

                moves.Add(new DiskMove
                {
                    VbdRef = vbd.Ref,
                    DiskIndex = int.Parse(vbd.Get(XenApi.VBD.Userdevice), NumberStyles.None, CultureInfo.InvariantCulture),
                    SourceVdiRef = vdi.Ref,
                    SourceSrRef = sr.Ref,
                    SourceLocation = vdi.Get(XenApi.VDI.Location),
                    DestinationSrRef = target.Ref,
                    DestinationVdiRef = OpaqueRef.New(),
                    DestinationVdiUuid = OpaqueRef.NewUuid(),
                    VirtualSize = vdi.Get(XenApi.VDI.VirtualSize),
                });
                continue;
            }

            if (!await placement.IsPluggedAsync(sr, hostRef, cancellationToken))
            {
                throw new XenApiException(ErrorCodes.VmRequiresSr, vm.Ref, sr.Ref);
            }
        }

        foreach (var vdiRef in vdiMap.Keys.Where(k => !mapped.Contains(k)))
        {
            // A VDI that is not one of this VM's disks is a mistake worth saying so; one mapped to its own SR is fine.
            var vdi = OpaqueRef.IsWellFormed(vdiRef) ? await database.TryGetAsync(XenClasses.VDI, vdiRef, cancellationToken) : null;
            if (vdi is null)
            {
                throw XenApiException.HandleInvalid(XenClasses.VDI, vdiRef);
            }

            if (!vdi.Get(XenApi.VDI.VBDs).Any(vm.Get(XenApi.VM.VBDs).Contains))
            {
                throw new XenApiException(ErrorCodes.InvalidValue, "vdi_map", $"{vdiRef} is not a disk of this VM");
            }
        }

        return moves;
    }

    /// <summary>xapi marks (and checks) a VM.migrate_send call as migrate_send, a VM.pool_migrate call as pool_migrate.</summary>
    private static VmOperations OperationOf(IReadOnlyDictionary<string, string>? vdiMap) => vdiMap is null ? VmOperations.PoolMigrate : VmOperations.MigrateSend;

    /// <summary><c>options:force=true</c> of a migration call.</summary>
    public static bool Forced(IReadOnlyDictionary<string, object?> options) =>
        string.Equals(options.GetValueOrDefault("force") as string, "true", StringComparison.OrdinalIgnoreCase);

    private static long Option(IReadOnlyDictionary<string, object?> options, string name, long fallback)
    {
        if (options.GetValueOrDefault(name) is not string text)
        {
            return fallback;
        }

        return long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) ? value
            : throw new XenApiException(ErrorCodes.InvalidValue, name, text);
    }
}
