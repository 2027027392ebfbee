using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Corral.Agent.Hosting;
using Corral.Agent.Operations;
using Corral.Agent.Storage;
using Corral.Api.Migration;
using Corral.Api.Operations;
using Corral.Api.Tasks;
using Corral.Hypervisor;
using Corral.Model;
using Corral.Networking;
using Corral.PoolDatabase;
using Corral.Storage;
using Microsoft.Extensions.Options;

namespace Corral.Agent.Vms;

/// <summary>
/// Both halves of a live migration over shared storage. The destination (<c>vm.migrate_receive</c>) starts a QEMU
/// waiting for the VM and publishes where; the source (<c>vm.migrate_send</c>) sends, reports progress, and decides.
/// The decision is one etcd transaction (<see cref="TryCommitAsync"/>): the record becomes <c>completed</c>, the VM's
/// <c>resident_on</c> and ownership claim move to the destination. Either side may make it: the source when QEMU
/// reports the migration completed, the destination when its QEMU starts running (which it only does once the whole
/// VM has arrived), so a source agent that dies mid-way does not leave the VM in limbo. Before that transaction the VM
/// belongs to the source, and any failure aborts: the destination's QEMU goes, the source's keeps running.
/// A storage migration adds the disks: the destination creates the new volumes and serves them over NBD from its
/// waiting QEMU, the source mirrors into them (<c>mirroring</c>) and sends the memory once they have caught up; at the
/// switchover the source completes the mirrors before <c>switching</c> and the destination stops serving before it
/// acknowledges. The commit points the VBDs at the new VDIs; the source then deletes the old volumes.
/// </summary>
public sealed partial class MigrationHandler(
    IPoolDatabase database,
    VmSupervisor supervisor,
    VmDevices devices,
    IHypervisor hypervisor,
    HostIdentity identity,
    HostLiveness liveness,
    BridgeNetworking networking,
    TaskService tasks,
    SrDrivers drivers,
    VmLeases leases,
    IOptions<AgentOptions> options,
    ILogger<MigrationHandler> logger) : IHostOperationHandler
{
    private static readonly TimeSpan Poll = MigrationPace.Poll;
    private static readonly TimeSpan FastPoll = MigrationPace.FastPoll;
    private static readonly TimeSpan SourceCheck = MigrationPace.SourceCheck;

    public IReadOnlyCollection<string> Kinds { get; } = [HostOperationKinds.VmMigrateSend, HostOperationKinds.VmMigrateReceive];

    public async Task<string?> ExecuteAsync(HostOperation operation, OperationProgress progress, CancellationToken cancellationToken)
    {
        if (operation.Kind == HostOperationKinds.VmMigrateSend)
        {
            return await ResumingAsync(() => SendAsync(operation, cancellationToken), operation, cancellationToken);
        }

        await ResumingAsync<string?>(async () =>
        {
            await ReceiveAsync(operation, progress, cancellationToken);
            return null;
        }, operation, cancellationToken);
        // The destination's half ran under an internal task nobody waits for: it goes with the operation.
        if (await database.TryGetAsync(XenClasses.Task, operation.TaskRef, cancellationToken) is { } task)
        {
            var tx = new PoolTransaction();
            tx.Delete(task);
            try
            {
                await database.CommitAsync(tx, cancellationToken);
            }
            catch (ConcurrentUpdateException)
            {
            }
        }

        return null;
    }

    /// <summary>
    /// Runs one half again after an unexpected error (an etcd or QMP hiccup), as an agent restart would resume it: each
    /// half reads the record afresh and carries on from its state. A half that failed for good would leave the record
    /// (the VM's migration lock) behind and maybe a QEMU nobody looks after, so it gives up only after several errors,
    /// and never for the pool database being out of reach: a host cut off from etcd around the switchover must find out
    /// how the migration ended once it is back (its incoming copy may be the VM's only one).
    /// </summary>
    private async Task<T> ResumingAsync<T>(Func<Task<T>> half, HostOperation operation, CancellationToken cancellationToken)
    {
        var failures = 0;
        while (true)
        {
            try
            {
                return await half();
            }
            catch (Exception ex) when (ex is not OperationCanceledException && (database.IsUnavailable(ex) || ++failures < MaxResumes))
            {
                logger.Log(database.IsUnavailable(ex) ? LogLevel.Debug : LogLevel.Warning, ex,
                    "{Kind} of {Vm} failed ({Failures} error(s) so far); resuming from the migration record", operation.Kind, operation.Target, failures);
                await Task.Delay(TimeSpan.FromMilliseconds(200 * Math.Clamp(failures, 1, MaxResumes)), cancellationToken);
            }
        }
    }

    private const int MaxResumes = 5;

    private async Task<(MigrationRecord Record, long Revision)?> ReadAsync(HostOperation operation, CancellationToken cancellationToken) =>
        await MigrationRecord.ReadAsync(database, operation.Target, cancellationToken) is { } found
        && found.Record.Id == operation.Argument("migration") ? found : null;

    // ---- destination ----

    private async Task ReceiveAsync(HostOperation operation, OperationProgress progress, CancellationToken cancellationToken)
    {
        var vm = await database.GetAsync(XenClasses.VM, operation.Target, cancellationToken);
        long? lastSourceCheck = null;
        var received = false;

        // Whether the source host is gone (its liveness lease expired), looked at once a second at most.
        async Task<bool> SourceGoneAsync(string sourceRef)
        {
            if (lastSourceCheck is { } last && Stopwatch.GetElapsedTime(last) < SourceCheck)
            {
                return false;
            }

            lastSourceCheck = Stopwatch.GetTimestamp();
            return !await HostIsLiveAsync(sourceRef, cancellationToken);
        }

        while (true)
        {
            var current = await ReadAsync(operation, cancellationToken);
            if (current is not { } found)
            {
                // The source finished the migration (either way) and removed the record: the pool database says how.
                if (!received)
                {
                    await FinishReceiveAsync(vm.Ref, vm.Uuid, cancellationToken);
                }

                return;
            }

            var (record, revision) = found;
            var process = supervisor.FindIncoming(vm.Uuid);
            var copyAlive = process is not null && !process.Exited.IsCompleted;
            var sourceGone = ReceiveSteps.AsksAboutSource(record.State, received, copyAlive) && await SourceGoneAsync(record.SourceRef);
            var runsGuest = ReceiveSteps.AsksWhetherRunning(record.State, copyAlive)
                            && await process!.QueryStateAsync(cancellationToken) == VmRunState.Running;
            switch (ReceiveSteps.Next(record.State, received, copyAlive, sourceGone, runsGuest))
            {
                case ReceiveStep.Prepare:
                    await PrepareIncomingAsync(vm, operation, progress, record, revision, cancellationToken);
                    continue;
                case ReceiveStep.Finish:
                    await FinishReceiveAsync(vm.Ref, vm.Uuid, cancellationToken);
                    received = true;
                    continue;
                case ReceiveStep.EndForGoneSource:
                    // The source ends the migration (kills its paused copy, removes the record, ends the task). If it
                    // died between the decision and that, the record would stay for good, and with it the VM's
                    // migration lock: nobody else would end it (HA recovers a failed host only for the VMs on it).
                    await EndForGoneSourceAsync(record, revision, cancellationToken);
                    continue;
                case ReceiveStep.WaitForSource:
                    await Task.Delay(Poll, cancellationToken);
                    continue;
                case ReceiveStep.Discard:
                    await DiscardIncomingAsync(vm.Uuid, record.DestinationDomid, vm, cancellationToken);
                    await DeleteNewVolumesAsync(record, cancellationToken);
                    return;
                case ReceiveStep.AbortCopyGone:
                    await AbortAsync(record, revision, "the destination's QEMU process is gone", cancellationToken);
                    continue;
                case ReceiveStep.Commit:
                    // QEMU runs the VM only once all of it has arrived: it runs here, and only here.
                    await TryCommitAsync(record, revision, cancellationToken);
                    continue;
                case ReceiveStep.DiscardSourceGone:
                    logger.LogWarning(MigrationEvents.SourceGoneDiscarded, "Migration of VM {Vm}: the source host is no longer live; discarding the incoming copy",
                        vm.Get(XenApi.VM.NameLabel));
                    await DiscardIncomingAsync(vm.Uuid, record.DestinationDomid, vm, cancellationToken);
                    await AbortAsync(record, revision, "the source host is no longer live", cancellationToken);
                    continue;
                case ReceiveStep.Acknowledge:
                    await AcknowledgeAsync(process!, record, revision, cancellationToken);
                    continue;
                default:
                    await Task.Delay(ReceiveSteps.NearSwitchover(record.State) ? FastPoll : Poll, cancellationToken);
                    continue;
            }
        }
    }

    /// <summary>
    /// The switchover: the disks are complete (the source finished its mirrors before switching), so the export lets
    /// go of them before the VM may run here and open them itself; the guest may run here only once this copy holds the
    /// VM's lease (shared with the source, which took it so before migrating). Then the source may let the VM switch
    /// over. Refused the lease, the switchover is not acknowledged: the migration aborts and the guest resumes on the source.
    /// </summary>
    private async Task AcknowledgeAsync(IVmProcess process, MigrationRecord record, long revision, CancellationToken cancellationToken)
    {
        if (record.Disks.Count > 0)
        {
            await process.StopDiskExportAsync(cancellationToken);
        }

        try
        {
            await leases.HoldAsync(process, shared: true, cancellationToken);
        }
        catch (XenApiException ex)
        {
            await AbortAsync(record, revision, ex.Message, cancellationToken);
            return;
        }

        await MigrationRecord.TryAdvanceAsync(database, record with { State = MigrationStates.SwitchAcknowledged }, revision, cancellationToken);
    }

    private async Task PrepareIncomingAsync(XenObject vm, HostOperation operation, OperationProgress progress, MigrationRecord record, long revision,
        CancellationToken cancellationToken)
    {
        var lease = liveness.Lease ?? throw new XenApiException(ErrorCodes.HostOffline, identity.Ref);
        var domid = progress.Current.Argument("domid");
        if (domid.Length == 0)
        {
            domid = HostIdentity.NextDomid(options.Value.StateDirectory).ToString(CultureInfo.InvariantCulture);
            await progress.StepAsync("domid", cancellationToken, new Dictionary<string, string> { ["domid"] = domid });
        }

        var uri = $"tcp:{options.Value.Address}:{FreePort()}";
        var nbdAddress = "";
        var disks = record.Disks;
        try
        {
            if (supervisor.TryTakeIncoming(vm.Uuid, out var earlier))
            {
                // A previous attempt of this step got as far as QEMU: start over, it never got the VM.
                await earlier.KillAsync(cancellationToken);
                await earlier.DisposeAsync();
            }

            disks = await CreateNewVolumesAsync(record, cancellationToken);
            var overrides = new Dictionary<string, (string Path, string Format)>(StringComparer.Ordinal);
            foreach (var disk in disks)
            {
                var (sr, driver, directory) = await LocalSrAsync(disk.DestinationSrRef, cancellationToken);
                overrides[disk.VbdRef] = driver.Resolve(directory, disk.DestinationLocation);
            }

            // The devices attached now, at the source's PCI slots (plugged ones too): QEMU moves the VM only onto the same bus.
            var spec = await devices.BuildSpecAsync(vm, long.Parse(domid, CultureInfo.InvariantCulture), attachedOnly: true, cancellationToken, overrides);
            // The copy here takes the VM's lease only at the switchover, shared with the source, before it may run the guest.
            var vmLease = await leases.ForLaunchAsync(vm, incoming: true, cancellationToken);
            // Over TLS (when the pool has its material) the copy accepts the stream and the NBD clients of the source host only.
            var process = await hypervisor.StartAsync(spec with { IncomingMigration = uri, Lease = vmLease, IncomingPeerIdentity = record.SourceTlsIdentity },
                cancellationToken);
            supervisor.AddIncoming(process);
            if (disks.Count > 0)
            {
                var nbdPort = FreePort();
                await process.ExportDisksAsync(options.Value.Address, nbdPort, disks.Select(d => d.DiskIndex).ToList(), cancellationToken);
                nbdAddress = $"{options.Value.Address}:{nbdPort.ToString(CultureInfo.InvariantCulture)}";
            }

            logger.LogInformation("Waiting for VM {Vm} at {Uri}{Disks}", vm.Get(XenApi.VM.NameLabel), uri,
                disks.Count > 0 ? $", its {disks.Count} disk(s) over NBD at {nbdAddress}" : "");
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            await DiscardIncomingAsync(vm.Uuid, long.Parse(domid, CultureInfo.InvariantCulture), vm, cancellationToken);
            await DeleteNewVolumesAsync(record with { Disks = disks }, cancellationToken);
            await AbortAsync(record, revision, "the destination could not prepare: " + ex.Message, cancellationToken);
            return;
        }

        var ready = record with
        {
            State = MigrationStates.Ready,
            DestinationUri = uri,
            DestinationLease = lease.Id,
            DestinationDomid = long.Parse(domid, CultureInfo.InvariantCulture),
            Disks = disks,
            NbdAddress = nbdAddress,
        };
        await MigrationRecord.TryAdvanceAsync(database, ready, revision, cancellationToken);
    }

    private async Task FinishReceiveAsync(string vmRef, string vmUuid, CancellationToken cancellationToken)
    {
        var vm = await database.GetAsync(XenClasses.VM, vmRef, cancellationToken);
        var incoming = supervisor.FindIncoming(vmUuid);
        var process = incoming ?? supervisor.Find(vmUuid);
        if (vm.Get(XenApi.VM.ResidentOn) != identity.Ref || process is null)
        {
            await DiscardIncomingAsync(vmUuid, vm.Get(XenApi.VM.Domid), vm, cancellationToken);
            return;
        }

        if (incoming is { Exited.IsCompleted: true })
        {
            // The migration committed, but this copy is gone: the self-fence killed it (the lease could not be counted
            // on around the switchover) or QEMU died. Nobody asked the VM to stop, so HA restarts it if it protects it.
            // Recorded before the copy is forgotten, so that a resumed attempt still finds it if this write fails.
            logger.LogWarning(MigrationEvents.ArrivedWithoutProcess, "VM {Vm} reached this host but its QEMU process is gone", vm.Get(XenApi.VM.NameLabel));
            await supervisor.MarkHaltedAsync(vmRef, cancellationToken, haRestart: true);
            if (supervisor.TryTakeIncoming(vmUuid, out var taken))
            {
                await taken.DisposeAsync();
            }

            return;
        }

        supervisor.TryTakeIncoming(vmUuid, out _);
        if (supervisor.Find(vmUuid) is null)
        {
            supervisor.Track(vmRef, process);
        }

        await devices.RecordAsync(vm, process.Spec, cancellationToken);
        await EnsureGuestRunsAsync(vm, process, cancellationToken);
        logger.LogInformation("VM {Vm} now runs here (QEMU pid {Pid})", vm.Get(XenApi.VM.NameLabel), process.ProcessId);
    }

    /// <summary>
    /// QEMU runs an incoming guest by itself once all of it has arrived, but the source commits on its own QEMU's
    /// "completed", without waiting for that: a copy here that did not start its guest would be a VM the pool calls
    /// running, stopped for good. QEMU gets a moment to load the last device state; a copy still stopped
    /// then gets <c>cont</c>, which takes the disks back and starts the guest (while QEMU still loads, it makes QEMU
    /// start the guest when done). Nothing else can run the guest by then: the migration committed to this host. A VM
    /// its user paused stays paused.
    /// </summary>
    private async Task EnsureGuestRunsAsync(XenObject vm, IVmProcess process, CancellationToken cancellationToken)
    {
        if (vm.Get(XenApi.VM.PowerState) != VmPowerState.Running)
        {
            return;
        }

        var state = VmRunState.Unknown;
        for (var look = 0; look < ArrivalLooks; look++)
        {
            state = await process.QueryStateAsync(cancellationToken);
            if (state != VmRunState.Paused)
            {
                return;
            }

            await Task.Delay(ArrivalPoll, cancellationToken);
        }

        logger.LogWarning(MigrationEvents.ResumedOnArrival, "VM {Vm} arrived but QEMU holds it stopped ({State}): resuming it",
            vm.Get(XenApi.VM.NameLabel), state);
        await process.ResumeAsync(cancellationToken);
    }

    /// <summary>An arrived copy still stopped is looked at this many times, <see cref="ArrivalPoll"/> apart, before it is resumed.</summary>
    private const int ArrivalLooks = 20;

    private static readonly TimeSpan ArrivalPoll = TimeSpan.FromMilliseconds(100);

    /// <summary>The VM runs here and its source host is gone: the migration ends as the source would have ended it.</summary>
    private async Task EndForGoneSourceAsync(MigrationRecord record, long revision, CancellationToken cancellationToken)
    {
        var vm = await database.GetAsync(XenClasses.VM, record.VmRef, cancellationToken);
        var tx = new PoolTransaction();
        await MigrationEnding.AddAsync(database, tx, record, revision, vm, DateTime.UtcNow, cancellationToken);
        try
        {
            await database.CommitAsync(tx, cancellationToken);
            logger.LogWarning(MigrationEvents.SourceGoneEnded, "Migration of VM {Vm}: the source host is no longer live; the destination ended the migration", vm.Get(XenApi.VM.NameLabel));
        }
        catch (ConcurrentUpdateException)
        {
            // The source (or HA fencing it) ended it meanwhile, or the VM changed: the next read says which.
        }
    }

    private async Task DiscardIncomingAsync(string vmUuid, long domid, XenObject vm, CancellationToken cancellationToken)
    {
        if (supervisor.TryTakeIncoming(vmUuid, out var process))
        {
            await process.KillAsync(cancellationToken);
            await process.DisposeAsync();
            await DeleteTapsAsync(vm, domid, cancellationToken);
            logger.LogInformation("Discarded the incoming copy of VM {Vm}", vm.Get(XenApi.VM.NameLabel));
        }
    }

    /// <summary>Creates the destination's empty volumes (same virtual size) that the mirrors fill; returns the moves with their locations.</summary>
    private async Task<IReadOnlyList<DiskMove>> CreateNewVolumesAsync(MigrationRecord record, CancellationToken cancellationToken)
    {
        var created = new List<DiskMove>();
        try
        {
            foreach (var disk in record.Disks)
            {
                var (_, driver, directory) = await LocalSrAsync(disk.DestinationSrRef, cancellationToken);
                var volume = await driver.CreateAsync(directory, disk.DestinationVdiUuid, disk.VirtualSize, cancellationToken);
                created.Add(disk with { DestinationLocation = volume.Location });
            }
        }
        catch (Exception) when (created.Count > 0)
        {
            await DeleteNewVolumesAsync(record with { Disks = created }, CancellationToken.None);
            throw;
        }

        return created;
    }

    /// <summary>After an abort: the destination's copies were never the VM's disks, and go.</summary>
    private async Task DeleteNewVolumesAsync(MigrationRecord record, CancellationToken cancellationToken)
    {
        foreach (var disk in record.Disks.Where(d => d.DestinationLocation.Length > 0))
        {
            try
            {
                var (_, driver, directory) = await LocalSrAsync(disk.DestinationSrRef, cancellationToken);
                await driver.DestroyAsync(directory, disk.DestinationLocation, cancellationToken);
                logger.LogInformation("Deleted the unfinished copy {Location} of VDI {Vdi}", disk.DestinationLocation, disk.SourceVdiRef);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                logger.LogWarning(ex, "Could not delete the unfinished copy {Location}", disk.DestinationLocation);
            }
        }
    }

    /// <summary>An SR plugged on this host: its driver and directory here.</summary>
    private async Task<(XenObject Sr, ISrDriver Driver, string Directory)> LocalSrAsync(string srRef, CancellationToken cancellationToken)
    {
        var sr = await database.GetAsync(XenClasses.SR, srRef, cancellationToken);
        var directory = await StorageOperationHandler.LocalDirectoryAsync(database, sr, identity.Ref, cancellationToken)
                        ?? throw new XenApiException(ErrorCodes.VmRequiresSr, OpaqueRef.Null, sr.Ref);
        return (sr, drivers.Get(sr.Get(XenApi.SR.Type)), directory);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Any, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    // ---- both ----

    /// <summary>
    /// The decision, as one transaction guarded by the record's revision: the record says completed, the VM is
    /// resident on the destination with its new domid, and its ownership claim rides on the destination's lease.
    /// </summary>
    private async Task TryCommitAsync(MigrationRecord record, long revision, CancellationToken cancellationToken)
    {
        var vm = await database.GetAsync(XenClasses.VM, record.VmRef, cancellationToken);
        var tx = new PoolTransaction();
        tx.Require(record.Key, revision);
        tx.PutKey(record.Key, (record with { State = MigrationStates.Completed }).ToJson());
        var v = vm.Clone();
        v.Set(XenApi.VM.ResidentOn, record.DestinationRef);
        v.Set(XenApi.VM.Domid, record.DestinationDomid);
        tx.Update(v);
        if (await SwitchDisksAsync(record, cancellationToken) is not { } diskWrites)
        {
            // The old VDIs are gone: the other side committed first (the next read of the record says so).
            return;
        }

        diskWrites(tx);
        var claimed = tx;
        claimed.PutKey(PoolKeys.VmOwnerKey(record.VmRef), record.DestinationRef, record.DestinationLease);
        try
        {
            await database.CommitAsync(claimed, cancellationToken);
            logger.LogInformation(MigrationEvents.Committed, "Migration of VM {Vm} committed: it runs on {Host}", vm.Get(XenApi.VM.NameLabel), record.DestinationRef);
        }
        catch (ConcurrentUpdateException)
        {
            // The other side decided first, or the VM record moved: the next read shows which.
        }
        catch (Exception ex) when (ex is not OperationCanceledException && database.IsUnavailable(ex) is false)
        {
            // The destination's lease is gone (its host died as the migration finished). The VM still runs there, as
            // far as QEMU goes, so that is what the pool database must say; the claim follows when the host returns.
            logger.LogWarning(ex, "The destination's lease is gone; recording the VM there without its claim");
            var unclaimed = new PoolTransaction();
            unclaimed.Require(record.Key, revision);
            unclaimed.PutKey(record.Key, (record with { State = MigrationStates.Completed }).ToJson());
            unclaimed.Update(v);
            diskWrites(unclaimed);
            try
            {
                await database.CommitAsync(unclaimed, cancellationToken);
            }
            catch (ConcurrentUpdateException)
            {
            }
        }
    }

    /// <summary>
    /// A storage migration's share of the decision: the new VDIs (refs and uuids chosen at the start, so both sides
    /// write the same), the VBDs pointing at them, the old VDIs forgotten. Null once that has been written.
    /// </summary>
    private async Task<Action<PoolTransaction>?> SwitchDisksAsync(MigrationRecord record, CancellationToken cancellationToken)
    {
        var writes = new List<Action<PoolTransaction>>();
        foreach (var disk in record.Disks)
        {
            if (await database.TryGetAsync(XenClasses.VDI, disk.SourceVdiRef, cancellationToken) is not { } old
                || await database.TryGetAsync(XenClasses.VBD, disk.VbdRef, cancellationToken) is not { } vbd
                || vbd.Get(XenApi.VBD.VDI) != disk.SourceVdiRef)
            {
                return null;
            }
            writes.Add(tx =>
            {
                var copy = tx.Create(XenClasses.VDISchema, reference: disk.DestinationVdiRef);
                copy.Set(XenApi.VDI.Uuid, disk.DestinationVdiUuid);
                copy.Set(XenApi.VDI.NameLabel, old.Get(XenApi.VDI.NameLabel));
                copy.Set(XenApi.VDI.NameDescription, old.Get(XenApi.VDI.NameDescription));
                copy.Set(XenApi.VDI.SR, disk.DestinationSrRef);
                copy.Set(XenApi.VDI.Location, disk.DestinationLocation);
                copy.Set(XenApi.VDI.VirtualSize, old.Get(XenApi.VDI.VirtualSize));
                copy.Set(XenApi.VDI.PhysicalUtilisation, old.Get(XenApi.VDI.PhysicalUtilisation));
                copy.Set(XenApi.VDI.Type, old.Get(XenApi.VDI.Type));
                copy.Set(XenApi.VDI.ReadOnly, old.Get(XenApi.VDI.ReadOnly));
                copy.Set(XenApi.VDI.Managed, true);
                copy.Set(XenApi.VDI.OtherConfig, old.Get(XenApi.VDI.OtherConfig));
                var moved = vbd.Clone();
                moved.Set(XenApi.VBD.VDI, disk.DestinationVdiRef);
                tx.Update(moved);
                tx.Delete(old);
            });
        }

        return tx => writes.ForEach(w => w(tx));
    }

    private async Task AbortAsync(MigrationRecord record, long revision, string error, CancellationToken cancellationToken)
    {
        logger.LogWarning(MigrationEvents.Aborted, "Migration of VM {Vm} aborted: {Error}", record.VmRef, error);
        await MigrationRecord.TryAdvanceAsync(database, record with { State = MigrationStates.Aborting, Error = error }, revision, cancellationToken);
    }

    private async Task<bool> HostIsLiveAsync(string hostRef, CancellationToken cancellationToken)
    {
        var host = await database.TryGetAsync(XenClasses.Host, hostRef, cancellationToken);
        return host is not null && await HostLiveness.IsLiveAsync(database, host, cancellationToken);
    }

    private async Task DeleteTapsAsync(XenObject vm, long domid, CancellationToken cancellationToken)
    {
        if (domid < 0)
        {
            return;
        }

        foreach (var vifRef in vm.Get(XenApi.VM.VIFs))
        {
            if (await database.TryGetAsync(XenClasses.VIF, vifRef, cancellationToken) is { } vif)
            {
                await networking.DeleteLinkAsync(BridgeNetworking.TapName(domid, vif.Get(XenApi.VIF.Device)), cancellationToken);
            }
        }
    }
}
