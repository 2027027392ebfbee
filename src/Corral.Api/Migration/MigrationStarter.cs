using System.Globalization;
using Corral.Api.Methods;
using Corral.Api.Operations;
using Corral.Api.Tasks;
using Corral.Model;
using Corral.PoolDatabase;

namespace Corral.Api.Migration;

/// <summary>
/// Starts a live migration: checks it can run (the VM running, the destination live, enabled, with room and the VM's
/// storage), records it (the record doubles as the VM's migration lock) and hands the two halves to the destination
/// (<c>vm.migrate_receive</c>) and the source (<c>vm.migrate_send</c>, which drives it). Used by <c>VM.pool_migrate</c>
/// and by host evacuation.
/// </summary>
public sealed class MigrationStarter(IPoolDatabase database, Placement placement, HostOperationQueue operations, TaskService tasks)
{
    /// <summary>
    /// Checks the migration can start, records it and queues both halves; returns the source half's task, which ends
    /// with the migration. <paramref name="progressTaskRef"/> (a caller's task) gets the progress if given.
    /// </summary>
    public async Task<string> StartAsync(string sessionRef, string vmRef, string hostRef, IReadOnlyDictionary<string, object?> options,
        string? progressTaskRef, CancellationToken cancellationToken)
    {
        var vm = OpaqueRef.IsWellFormed(vmRef) ? await database.GetAsync(XenClasses.VM, vmRef, cancellationToken).ConfigureAwait(false)
            : throw XenApiException.HandleInvalid(XenClasses.VM, vmRef);
        var destination = OpaqueRef.IsWellFormed(hostRef) ? await database.GetAsync(XenClasses.Host, hostRef, cancellationToken).ConfigureAwait(false)
            : throw XenApiException.HandleInvalid(XenClasses.Host, hostRef);
        if (vm.GetBool("is_a_template") || vm.GetBool("is_control_domain"))
        {
            throw new XenApiException(ErrorCodes.VmIsTemplate, vmRef);
        }

        if (vm.GetString("power_state") is not ("Running" or "Paused"))
        {
            throw new XenApiException(ErrorCodes.VmBadPowerState, vmRef, "running", vm.GetString("power_state").ToLowerInvariant());
        }

        var sourceRef = vm.GetString("resident_on");
        if (sourceRef == hostRef)
        {
            throw new XenApiException(ErrorCodes.OperationNotAllowed, "The VM already runs on that host");
        }

        var source = await database.TryGetAsync(XenClasses.Host, sourceRef, cancellationToken).ConfigureAwait(false);
        if (source is null || !await placement.IsLiveAsync(source, cancellationToken).ConfigureAwait(false))
        {
            throw new XenApiException(ErrorCodes.HostOffline, sourceRef);
        }

        if (await MigrationRecord.ReadAsync(database, vmRef, cancellationToken).ConfigureAwait(false) is not null)
        {
            throw new XenApiException(ErrorCodes.OtherOperationInProgress, XenClasses.VM, vmRef);
        }

        await placement.CheckHostAsync(vm, destination, cancellationToken).ConfigureAwait(false);
        await CheckStorageReachableAsync(vm, hostRef, cancellationToken).ConfigureAwait(false);

        // The source's half runs under a task of its own, ended by the agent; the caller's task (an Async.* call's)
        // carries the progress and ends when this handler returns, as every Async.* call's does.
        var sendTask = await tasks.CreateAsync(sessionRef, "VM.pool_migrate (source)", vmRef, cancellationToken).ConfigureAwait(false);
        var taskRef = progressTaskRef ?? sendTask;
        var record = new MigrationRecord
        {
            Id = Guid.NewGuid().ToString("N"),
            VmRef = vmRef,
            SourceRef = sourceRef,
            DestinationRef = hostRef,
            TaskRef = taskRef,
            DowntimeLimitMilliseconds = Option(options, "downtime_ms", 300),
            MaxBandwidthBytesPerSecond = Option(options, "bandwidth", 0),
            AutoConverge = !string.Equals(options.GetValueOrDefault("auto_converge") as string, "false", StringComparison.OrdinalIgnoreCase),
        };

        // One transaction takes the migration lock (the record must not exist) and marks the VM busy, as xapi does
        // with current_operations; a second migration of the same VM fails here.
        var tx = new PoolTransaction();
        tx.Require(record.Key, 0);
        tx.PutKey(record.Key, record.ToJson());
        var busy = vm.Clone();
        var ops = new Dictionary<string, object?>(vm.GetStringMap("current_operations").ToDictionary(kv => kv.Key, kv => (object?)kv.Value)) { [taskRef] = "pool_migrate" };
        busy["current_operations"] = ops;
        busy["scheduled_to_be_resident_on"] = hostRef;
        tx.Update(busy);
        try
        {
            await database.CommitAsync(tx, cancellationToken).ConfigureAwait(false);
        }
        catch (ConcurrentUpdateException)
        {
            throw new XenApiException(ErrorCodes.OtherOperationInProgress, XenClasses.VM, vmRef);
        }

        var arguments = new Dictionary<string, string> { ["migration"] = record.Id };
        var receiveTask = await tasks.CreateAsync(sessionRef, "VM.pool_migrate (destination)", vmRef, cancellationToken).ConfigureAwait(false);
        await operations.SubmitAsync(HostOperationKinds.VmMigrateReceive, hostRef, vmRef, arguments, sessionRef, receiveTask, cancellationToken).ConfigureAwait(false);
        await operations.SubmitAsync(HostOperationKinds.VmMigrateSend, sourceRef, vmRef, arguments, sessionRef, sendTask, cancellationToken).ConfigureAwait(false);
        return sendTask;
    }



    /// <summary>Every disk's SR must be plugged on the destination: this is migration over shared storage.</summary>
    public async Task CheckStorageReachableAsync(XenObject vm, string hostRef, CancellationToken cancellationToken)
    {
        foreach (var vbdRef in vm.GetSet("VBDs"))
        {
            var vbd = await database.TryGetAsync(XenClasses.VBD, vbdRef, cancellationToken).ConfigureAwait(false);
            if (vbd is null || vbd.GetBool("empty") || OpaqueRef.IsNull(vbd.GetString("VDI")))
            {
                continue;
            }

            var vdi = await database.GetAsync(XenClasses.VDI, vbd.GetString("VDI"), cancellationToken).ConfigureAwait(false);
            var sr = await database.GetAsync(XenClasses.SR, vdi.GetString("SR"), cancellationToken).ConfigureAwait(false);
            var plugged = false;
            foreach (var pbdRef in sr.GetSet("PBDs"))
            {
                if (await database.TryGetAsync(XenClasses.PBD, pbdRef, cancellationToken).ConfigureAwait(false) is { } pbd
                    && pbd.GetString("host") == hostRef && pbd.GetBool("currently_attached"))
                {
                    plugged = true;
                }
            }

            if (!plugged)
            {
                throw new XenApiException(ErrorCodes.VmRequiresSr, vm.Ref, sr.Ref);
            }
        }
    }

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
