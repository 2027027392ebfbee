using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Runtime.CompilerServices;
using Corral.Agent.Hosting;
using Corral.HighAvailability;
using Corral.Hypervisor;
using Corral.Model;
using Corral.Networking;
using Corral.PoolDatabase;
using Corral.WebConsole.Consoles;

namespace Corral.Agent.Vms;

/// <summary>
/// Knows every VM process on this host, keeps the pool database in step with them (power state when a process
/// ends, guest metrics from the guest agent), and re-adopts the processes an earlier agent left running.
/// </summary>
public sealed class VmSupervisor(
    IPoolDatabase database,
    IHypervisor hypervisor,
    HostIdentity identity,
    BridgeNetworking networking,
    VmDevices devices,
    GuestMetricsWriter guestMetrics,
    ILogger<VmSupervisor> logger) : IRunningVms
{
    private readonly ConcurrentDictionary<string, IVmProcess> _byVmUuid = new(StringComparer.Ordinal);

    // A live migration's destination copies, until the migration completes and Track takes them over. They are kept
    // here, not by the migration, so that the self-fence sees them: after the switchover such a copy runs the guest.
    private readonly ConcurrentDictionary<string, IVmProcess> _incoming = new(StringComparer.Ordinal);

    // Per tracked process, the supervisor's handling of its end (OnExitedAsync): the one place a VM process's end is
    // recorded, which the operations that stop a VM wait for.
    private readonly ConditionalWeakTable<IVmProcess, Task> _endRecords = [];

    private TaskCompletionSource _tracked = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public IVmProcess? Find(string vmUuid) => _byVmUuid.GetValueOrDefault(vmUuid);

    /// <summary>Completes when the set of VMs running here next changes (one tracked, or its process gone).</summary>
    public Task NextChange => Volatile.Read(ref _tracked).Task;

    private void SignalChange() =>
        Interlocked.Exchange(ref _tracked, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    /// <summary>The VMs that run here.</summary>
    public IReadOnlyCollection<IVmProcess> All => _byVmUuid.Values.ToList();

    /// <summary>Every live QEMU process on this host: the VMs that run here and the incoming copies of live migrations.</summary>
    public IReadOnlyCollection<IVmProcess> AllProcesses => [.. _byVmUuid.Values, .. _incoming.Values.Where(p => !p.Exited.IsCompleted)];

    public IVmProcess? FindIncoming(string vmUuid) => _incoming.GetValueOrDefault(vmUuid);

    public void AddIncoming(IVmProcess process) => _incoming[process.VmUuid] = process;

    public bool TryTakeIncoming(string vmUuid, [NotNullWhen(true)] out IVmProcess? process) => _incoming.TryRemove(vmUuid, out process);

    public async Task AdoptAsync(CancellationToken cancellationToken)
    {
        foreach (var process in await hypervisor.AdoptRunningAsync(cancellationToken))
        {
            var vm = await database.FindByUuidAsync(XenClasses.VM, process.VmUuid, cancellationToken);
            if (vm is null || vm.Get(XenApi.VM.ResidentOn) != identity.Ref)
            {
                // The pool says this VM is not ours (destroyed, or declared halted and maybe started elsewhere):
                // a stale copy must not keep writing to its disks.
                logger.LogWarning("Stopping stale VM process {Pid} for {Vm}: the pool database does not place it here", process.ProcessId, process.VmUuid);
                await process.KillAsync(cancellationToken);
                await process.DisposeAsync();
                continue;
            }

            logger.LogInformation("Re-adopted VM {Name} ({Uuid}), QEMU pid {Pid}", vm.Get(XenApi.VM.NameLabel), process.VmUuid, process.ProcessId);
            Track(vm.Ref, process);
        }
    }

    /// <summary>
    /// The other way round from <see cref="AdoptAsync"/>: VMs the pool database says run here with no process left (the
    /// host lost power or rebooted, and came back before anyone declared them halted). They stopped without being asked
    /// to, so they are recorded halted and, if protected, handed to HA, as XenServer resynchronises power states when
    /// it starts. Waits for the pool database (a host back in a pool without quorum waits for it).
    /// </summary>
    public async Task RecordVanishedAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            try
            {
                await RecordVanishedOnceAsync(cancellationToken);
                return;
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
            {
                logger.LogDebug(ex, "Cannot compare the pool database's VMs with this host's processes yet; retrying");
                await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken);
            }
        }
    }

    private async Task RecordVanishedOnceAsync(CancellationToken cancellationToken)
    {
        foreach (var vm in await database.GetAllAsync(XenClasses.VM, cancellationToken))
        {
            if (vm.Get(XenApi.VM.ResidentOn) == identity.Ref && vm.Get(XenApi.VM.PowerState) is VmPowerState.Running or VmPowerState.Paused && Find(vm.Uuid) is null)
            {
                logger.LogWarning("VM {Name} was running here but its process is gone; recording it halted", vm.Get(XenApi.VM.NameLabel));
                await MarkHaltedAsync(vm.Ref, cancellationToken, haRestart: true);
            }
        }
    }

    public void Track(string vmRef, IVmProcess process)
    {
        _byVmUuid[process.VmUuid] = process;
        SignalChange();
        process.EventReceived += (_, e) =>
        {
            if (e.Kind == VmProcessEventKind.GuestReport && process.LatestGuestReport is { } report)
            {
                _ = guestMetrics.UpdateAsync(vmRef, report);
            }
            else if (e is { Kind: VmProcessEventKind.DeviceRemoved, Device: { } device })
            {
                _ = RecordRemovedAsync(vmRef, process, device);
            }
            else if (e.Kind == VmProcessEventKind.GuestAgentSilent && Find(process.VmUuid) == process)
            {
                _ = guestMetrics.MarkSilentAsync(vmRef);
            }
        };
        _endRecords.AddOrUpdate(process, process.Exited.ContinueWith(_ => OnExitedAsync(vmRef, process), TaskScheduler.Default).Unwrap());
    }

    /// <summary>
    /// Completes once <paramref name="process"/> (tracked here) has ended and the supervisor has recorded it: the VM
    /// Halted, its ownership claim, devices and taps released (or nothing written, if the VM is no longer this host's
    /// or a newer copy runs here). Faults with the error if that record failed. An operation that stops a VM ends
    /// with this, so that its caller's next call sees the VM halted; it does not write the record itself, which
    /// would race with the supervisor's (and could not tell the ended process from a newer copy while the supervisor
    /// still lists it).
    /// </summary>
    public Task WhenEndRecordedAsync(IVmProcess process, CancellationToken cancellationToken) =>
        _endRecords.TryGetValue(process, out var recorded)
            ? recorded.WaitAsync(cancellationToken)
            : throw new InvalidOperationException($"QEMU process {process.ProcessId} of VM {process.VmUuid} is not tracked");

    private async Task OnExitedAsync(string vmRef, IVmProcess process)
    {
        if (!_byVmUuid.TryRemove(new KeyValuePair<string, IVmProcess>(process.VmUuid, process)))
        {
            return;
        }

        SignalChange();

        guestMetrics.Forget(vmRef);

        logger.LogInformation("VM process {Pid} of {Vm} has ended{How}", process.ProcessId, process.VmUuid, process.ExitIntended ? "" : " unexpectedly");
        try
        {
            await MarkHaltedAsync(vmRef, CancellationToken.None, haRestart: !process.ExitIntended, nvram: await process.ReadNvramAsync(CancellationToken.None),
                tpmState: await process.ReadTpmStateAsync(CancellationToken.None));
        }
        catch (Exception ex)
        {
            // An operation waiting for this record (WhenEndRecordedAsync) gets the error; otherwise the agent's next
            // start records the VM halted (RecordVanishedAsync).
            logger.LogError(ex, "Could not record that VM {Vm} has halted", vmRef);
            throw;
        }
        finally
        {
            await process.DisposeAsync();
        }
    }

    /// <summary>
    /// Records the VM as halted (if it still was ours) and releases its ownership claim and taps. With
    /// <paramref name="haRestart"/> (the process was killed by the self-fence or died on its own, nobody asked it to
    /// stop), a VM HA protects is handed to HA in the same transaction: it joins this host's recovery record, and the
    /// master restarts it (<see cref="RecoveryRecord.WithRestartsRequested"/>).
    /// </summary>
    /// <param name="nvram">A UEFI VM's variable store as the process left it, kept with the VM.</param>
    /// <param name="tpmState">The vTPM's state as the process left it, kept in the VM's VTPM.</param>
    public async Task MarkHaltedAsync(string vmRef, CancellationToken cancellationToken, bool haRestart = false, byte[]? nvram = null, byte[]? tpmState = null)
    {
        XenObject vm;
        for (var attempt = 1; ; attempt++)
        {
            var current = await database.TryGetAsync(XenClasses.VM, vmRef, cancellationToken);
            if (current is null || current.Get(XenApi.VM.ResidentOn) != identity.Ref || Find(current.Uuid) is not null)
            {
                // Not ours any more, or a newer copy already runs here (HA restarted it on this very host before this
                // record of the old copy's end got through): nothing to record.
                return;
            }

            vm = current;
            var halted = current.Clone();
            halted.Set(XenApi.VM.PowerState, VmPowerState.Halted);
            halted.Set(XenApi.VM.ResidentOn, OpaqueRef.Null);
            halted.Set(XenApi.VM.Domid, -1L);
            // A migration it was in has ended with it: no room stays reserved for it on the destination.
            halted.Set(XenApi.VM.ScheduledToBeResidentOn, OpaqueRef.Null);
            if (nvram is not null)
            {
                halted.Set(XenApi.VM.NVRAM, VmNvram.With(current.Get(XenApi.VM.NVRAM), nvram));
            }
            var tx = new PoolTransaction();
            tx.Update(halted);
            if (tpmState is not null)
            {
                await VmVtpm.AddFinalStateAsync(database, tx, current, tpmState, cancellationToken);
            }

            if (haRestart && current.Get(XenApi.VM.HaRestartPriority) is RestartPriority.Restart or RestartPriority.BestEffort
                && (await database.GetAllAsync(XenClasses.Pool, cancellationToken)).SingleOrDefault()?.Get(XenApi.Pool.HaEnabled) == true)
            {
                var key = PoolKeys.HaRecoveries + identity.Ref;
                var (json, revision) = await database.Leases.GetWithRevisionAsync(key, cancellationToken);
                var record = RecoveryRecord.WithRestartsRequested(json is null ? null : RecoveryRecord.FromJson(json), identity.Ref,
                    [new HaVm(vmRef, current.Get(XenApi.VM.NameLabel), "Halted", OpaqueRef.Null, current.Get(XenApi.VM.HaRestartPriority),
                        current.Get(XenApi.VM.Order), current.Get(XenApi.VM.StartDelay), 0)]);
                tx.Require(key, revision);
                tx.PutKey(key, record.ToJson());
                logger.LogWarning("VM {Vm} stopped without being asked to; HA will restart it", current.Get(XenApi.VM.NameLabel));
            }

            try
            {
                await database.CommitAsync(tx, cancellationToken);
                break;
            }
            catch (ConcurrentUpdateException) when (attempt < 10)
            {
                // The VM or the recovery record changed since read (the master at work): read again.
            }
        }

        var domid = vm.Get(XenApi.VM.Domid);
        await devices.RecordAsync(vm, null, cancellationToken);
        if (await database.TryGetAsync(XenClasses.VMGuestMetrics, vm.Get(XenApi.VM.GuestMetrics), cancellationToken) is { } gm)
        {
            var g = gm.Clone();
            g.Set(XenApi.VMGuestMetrics.Live, false);
            var tx = new PoolTransaction();
            tx.Update(g);
            await TryCommitAsync(tx, cancellationToken);
        }

        foreach (var vifRef in vm.Get(XenApi.VM.VIFs))
        {
            if (await database.TryGetAsync(XenClasses.VIF, vifRef, cancellationToken) is { } vif && domid >= 0)
            {
                await networking.DeleteLinkAsync(BridgeNetworking.TapName(domid, vif.Get(XenApi.VIF.Device)), cancellationToken);
            }
        }

        await database.Leases.DeleteIfValueAsync(PoolKeys.VmOwnerKey(vmRef), identity.Ref, cancellationToken);
    }

    /// <summary>
    /// The guest released a device Corral asked it to, maybe long after the unplug call gave up waiting: the VBD or VIF
    /// is recorded detached, and a card's tap goes.
    /// </summary>
    private async Task RecordRemovedAsync(string vmRef, IVmProcess process, VmDevice device)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            var vm = await database.TryGetAsync(XenClasses.VM, vmRef, timeout.Token);
            if (vm is null || Find(vm.Uuid) != process)
            {
                return;
            }

            await devices.RecordAsync(vm, process.Spec, timeout.Token);
            if (device.Kind == VmDeviceKind.Nic)
            {
                await networking.DeleteLinkAsync(BridgeNetworking.TapName(vm.Get(XenApi.VM.Domid), device.Index.ToString(CultureInfo.InvariantCulture)), timeout.Token);
            }

            logger.LogInformation("VM {Vm}: the guest released {Kind} {Index}", vm.Get(XenApi.VM.NameLabel), device.Kind, device.Index);
        }
        catch (Exception ex)
        {
            logger.LogWarning(ex, "Could not record that VM {Vm} released {Kind} {Index}; the unplug's retry records it", vmRef, device.Kind, device.Index);
        }
    }

    private async Task TryCommitAsync(PoolTransaction tx, CancellationToken cancellationToken)
    {
        try
        {
            await database.CommitAsync(tx, cancellationToken);
        }
        catch (ConcurrentUpdateException ex)
        {
            logger.LogDebug(ex, "Attachment update raced with another writer");
        }
    }
}
