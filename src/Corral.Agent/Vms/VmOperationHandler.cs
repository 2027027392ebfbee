using System.Globalization;
using Corral.Agent.Hosting;
using Corral.Agent.Operations;
using Corral.Agent.Storage;
using Corral.Api.Devices;
using Corral.Api.Methods;
using Corral.Api.Operations;
using Corral.Hypervisor;
using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.Extensions.Options;

namespace Corral.Agent.Vms;

/// <summary>The VM lifecycle on this host: start, shutdown, reboot, pause, CD changes.</summary>
public sealed class VmOperationHandler(
    IPoolDatabase database,
    IHypervisor hypervisor,
    VmSupervisor supervisor,
    VmDevices devices,
    VmLeases leases,
    HostIdentity identity,
    HostLiveness liveness,
    IOptions<AgentOptions> options,
    ILogger<VmOperationHandler> logger) : IHostOperationHandler
{
    /// <summary>Key of <c>VM.platform</c> choosing the device model: "virtio" (default) or "emulated".</summary>
    public const string DevicesPlatformKey = VmDevices.DevicesPlatformKey;

    public IReadOnlyCollection<string> Kinds { get; } =
    [
        HostOperationKinds.VmStart, HostOperationKinds.VmCleanShutdown, HostOperationKinds.VmHardShutdown, HostOperationKinds.VmCleanReboot,
        HostOperationKinds.VmHardReboot, HostOperationKinds.VmPause, HostOperationKinds.VmUnpause, HostOperationKinds.VmChangeMedium,
    ];

    public async Task<string?> ExecuteAsync(HostOperation operation, OperationProgress progress, CancellationToken cancellationToken)
    {
        var vm = await database.GetAsync(XenClasses.VM, operation.Target, cancellationToken);
        switch (operation.Kind)
        {
            case HostOperationKinds.VmStart:
                await StartAsync(vm, operation, progress, cancellationToken);
                break;
            case HostOperationKinds.VmCleanShutdown:
                await ShutdownAsync(vm, operation.Argument("fallback_hard") == "true", cancellationToken);
                break;
            case HostOperationKinds.VmHardShutdown:
                await HardShutdownAsync(vm, cancellationToken);
                break;
            case HostOperationKinds.VmCleanReboot:
                await Process(vm).RequestRebootAsync(cancellationToken);
                await RecordRestartAsync(vm, Process(vm).Spec, cancellationToken);
                break;
            case HostOperationKinds.VmHardReboot:
                await Process(vm).ResetAsync(cancellationToken);
                await RecordRestartAsync(vm, Process(vm).Spec, cancellationToken);
                break;
            case HostOperationKinds.VmPause:
                await Process(vm).PauseAsync(cancellationToken);
                await SetPowerStateAsync(vm.Ref, VmPowerState.Paused, cancellationToken);
                break;
            case HostOperationKinds.VmUnpause:
                await Process(vm).ResumeAsync(cancellationToken);
                await SetPowerStateAsync(vm.Ref, VmPowerState.Running, cancellationToken);
                break;
            case HostOperationKinds.VmChangeMedium:
                await ChangeMediumAsync(vm, operation.Argument("vbd"), operation.Argument("vdi"), cancellationToken);
                break;
            default:
                throw new XenApiException(ErrorCodes.NotImplemented, operation.Kind);
        }

        return null;
    }

    private IVmProcess Process(XenObject vm) =>
        supervisor.Find(vm.Uuid) ?? throw new XenApiException(ErrorCodes.VmBadPowerState, vm.Ref, "running", "halted");

    private async Task StartAsync(XenObject vm, HostOperation operation, OperationProgress progress, CancellationToken cancellationToken)
    {
        var reservation = operation.Argument("reservation");
        try
        {
            if (supervisor.Find(vm.Uuid) is { } running)
            {
                // Resumed after a crash between launching QEMU and recording it: the process is the one we launched.
                await RecordRunningAsync(vm, running, operation.Argument("domid"), reservation, cancellationToken);
                return;
            }

            VmPowerStates.Require(vm, VmPowerState.Halted);

            // The ownership claim rides on this host's lease: while it exists no other host may run this VM.
            var lease = liveness.Lease ?? throw new XenApiException(ErrorCodes.HostOffline, identity.Ref);
            if (!await database.Leases.TryClaimAsync(lease, PoolKeys.VmOwnerKey(vm.Ref), identity.Ref, cancellationToken)
                && await database.Leases.GetValueAsync(PoolKeys.VmOwnerKey(vm.Ref), cancellationToken) != identity.Ref)
            {
                throw new XenApiException(ErrorCodes.OtherOperationInProgress, XenClasses.VM, vm.Ref);
            }

            var domid = operation.Argument("domid");
            if (string.IsNullOrEmpty(domid))
            {
                domid = HostIdentity.NextDomid(options.Value.StateDirectory).ToString(CultureInfo.InvariantCulture);
                await progress.StepAsync("claimed", cancellationToken, new Dictionary<string, string> { ["domid"] = domid });
            }

            vm = await VmVtpm.EnsureForPlatformAsync(database, vm, logger, cancellationToken);
            VmLaunchSpec spec;
            try
            {
                spec = await devices.BuildSpecAsync(vm, long.Parse(domid, CultureInfo.InvariantCulture), attachedOnly: false, cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // A device this host cannot give the VM (its SR not plugged here, its network's card not usable): nothing
                // was launched, so the claim goes, and another host may start the VM.
                await database.Leases.DeleteIfValueAsync(PoolKeys.VmOwnerKey(vm.Ref), identity.Ref, CancellationToken.None);
                throw;
            }

            await progress.StepAsync("launching", cancellationToken);
            IVmProcess process;
            try
            {
                spec = spec with { Lease = await leases.ForLaunchAsync(vm, incoming: false, cancellationToken) };
                process = await hypervisor.StartAsync(spec, cancellationToken);
            }
            catch (Exception ex) when (ex is VmStartException or XenApiException)
            {
                await database.Leases.DeleteIfValueAsync(PoolKeys.VmOwnerKey(vm.Ref), identity.Ref, CancellationToken.None);
                throw ex as XenApiException ?? new XenApiException(ErrorCodes.VmStartFailed, vm.Ref, ex.Message);
            }

            // QEMU gives the guest static_max; the balloon takes it down to dynamic_max (as squeezed would, with memory to spare).
            if (process.Spec.Balloon && vm.Get(XenApi.VM.MemoryDynamicMax) is var target && target > 0 && target < vm.Get(XenApi.VM.MemoryStaticMax))
            {
                await process.SetMemoryTargetAsync(target, cancellationToken);
            }

            if (operation.Argument("paused") == "true")
            {
                await process.PauseAsync(cancellationToken);
            }

            await RecordRunningAsync(vm, process, domid, reservation, cancellationToken);
            supervisor.Track(vm.Ref, process);
        }
        finally
        {
            await ClearReservationAsync(vm.Ref, reservation);
        }
    }

    private async Task ClearReservationAsync(string vmRef, string reservation)
    {
        await database.UpdateAsync([(XenClasses.VM, vmRef)], (objs, tx) =>
        {
            var v = objs[0].Clone();
            var ops = v.Get(XenApi.VM.CurrentOperations).ToDictionary();
            if (ops.Remove(reservation))
            {
                v.Set(XenApi.VM.CurrentOperations, ops);
                if (v.Get(XenApi.VM.PowerState) == VmPowerState.Halted)
                {
                    v.Set(XenApi.VM.ScheduledToBeResidentOn, OpaqueRef.Null);
                }

                tx.Update(v);
            }
        }, CancellationToken.None);
    }

    private async Task RecordRunningAsync(XenObject vm, IVmProcess process, string domid, string reservation, CancellationToken cancellationToken)
    {
        var state = await process.QueryStateAsync(cancellationToken);
        await database.UpdateAsync([(XenClasses.VM, vm.Ref)], (objs, tx) =>
        {
            var v = objs[0].Clone();
            v.Set(XenApi.VM.PowerState, state == VmRunState.Paused ? VmPowerState.Paused : VmPowerState.Running);
            v.Set(XenApi.VM.ResidentOn, identity.Ref);
            v.Set(XenApi.VM.ScheduledToBeResidentOn, OpaqueRef.Null);
            v.Set(XenApi.VM.Domid, long.Parse(domid, CultureInfo.InvariantCulture));
            var ops = v.Get(XenApi.VM.CurrentOperations).ToDictionary();
            ops.Remove(reservation);
            v.Set(XenApi.VM.CurrentOperations, ops);
            tx.Update(v);
        }, cancellationToken);
        await RecordRestartAsync(vm, process.Spec, cancellationToken);
        // Every device attached, at the slot QEMU has it, each disk under the name the guest gives it.
        await devices.RecordAsync(vm, process.Spec, cancellationToken, VmDevices.NamesAtStart(process.Spec));
    }

    private async Task RecordRestartAsync(XenObject vm, VmLaunchSpec spec, CancellationToken cancellationToken)
    {
        if (await database.TryGetAsync(XenClasses.VMMetrics, vm.Get(XenApi.VM.Metrics), cancellationToken) is null)
        {
            return;
        }

        await database.UpdateAsync([(XenClasses.VMMetrics, vm.Get(XenApi.VM.Metrics))], (objs, tx) =>
        {
            var m = objs[0].Clone();
            m.Set(XenApi.VMMetrics.StartTime, DateTime.UtcNow);
            m.Set(XenApi.VMMetrics.MemoryActual, vm.Get(XenApi.VM.MemoryStaticMax));
            m.Set(XenApi.VMMetrics.VCPUsNumber, vm.Get(XenApi.VM.VCPUsAtStartup));
            m.Set(XenApi.VMMetrics.LastUpdated, DateTime.UtcNow);
            m.Set(XenApi.VMMetrics.State, []);
            m.Set(XenApi.VMMetrics.OtherConfig, new Dictionary<string, string>(m.Get(XenApi.VMMetrics.OtherConfig)) { [VmHardware.MetricsKey] = VmHardware.Describe(spec) });
            tx.Update(m);
        }, cancellationToken);
    }

    private async Task ShutdownAsync(XenObject vm, bool fallbackHard, CancellationToken cancellationToken)
    {
        var process = Process(vm);
        if (!await CleanExitAsync(process, options.Value.CleanShutdownTimeout, cancellationToken))
        {
            if (!fallbackHard)
            {
                throw new XenApiException(ErrorCodes.VmShutdownTimeout, vm.Ref,
                    options.Value.CleanShutdownTimeout.TotalSeconds.ToString(CultureInfo.InvariantCulture));
            }

            logger.LogInformation("VM {Vm} did not shut down cleanly in time; forcing it off", vm.Ref);
            await process.KillAsync(cancellationToken);
        }

        await RecordEndedAsync(vm, process, cancellationToken);
    }

    /// <summary>How often a clean shutdown is asked again while the guest has not gone: every 15 s, or 8 times within a shorter timeout.</summary>
    public static TimeSpan ShutdownAskedAgainEvery(TimeSpan timeout) => timeout / 8 < TimeSpan.FromSeconds(15) ? timeout / 8 : TimeSpan.FromSeconds(15);

    /// <summary>
    /// Asks the guest to shut down, and again every <see cref="ShutdownAskedAgainEvery"/> until it has gone or
    /// <paramref name="timeout"/> has passed, as an administrator presses the power button again: a guest still booting
    /// ignores the ACPI button it got before its handler ran, and its guest agent, answering by the next time, is
    /// asked instead. False when it had not gone in time.
    /// </summary>
    private static async Task<bool> CleanExitAsync(IVmProcess process, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var every = ShutdownAskedAgainEvery(timeout);
        while (clock.Elapsed < timeout)
        {
            try
            {
                await process.RequestShutdownAsync(cancellationToken);
            }
            catch (Exception) when (process.Exited.IsCompleted)
            {
                return true; // it went as it was asked again
            }

            var wait = timeout - clock.Elapsed;
            try
            {
                await process.Exited.WaitAsync(wait < every ? wait : every, cancellationToken);
                return true;
            }
            catch (TimeoutException)
            {
            }
        }

        return process.Exited.IsCompleted;
    }

    private async Task HardShutdownAsync(XenObject vm, CancellationToken cancellationToken)
    {
        if (supervisor.Find(vm.Uuid) is { } process)
        {
            await process.KillAsync(cancellationToken);
            await RecordEndedAsync(vm, process, cancellationToken);
            return;
        }

        // No process here, though the pool database says the VM runs here: the record is put right.
        await supervisor.MarkHaltedAsync(vm.Ref, cancellationToken);
    }

    /// <summary>
    /// The call ends once the VM is recorded halted, so that the caller's next call (a start, say) sees it so. The
    /// supervisor writes that record when it sees the process end; this waits for it. Only if the supervisor could not
    /// write it (the pool database out of reach) does the operation try again itself, the process no longer listed.
    /// </summary>
    private async Task RecordEndedAsync(XenObject vm, IVmProcess process, CancellationToken cancellationToken)
    {
        try
        {
            await supervisor.WhenEndRecordedAsync(process, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            logger.LogWarning(ex, "VM {Vm} has stopped but the supervisor could not record it; trying again", vm.Ref);
            await supervisor.MarkHaltedAsync(vm.Ref, cancellationToken);
        }
    }

    private async Task SetPowerStateAsync(string vmRef, VmPowerState state, CancellationToken cancellationToken) =>
        await database.UpdateAsync([(XenClasses.VM, vmRef)], (objs, tx) =>
        {
            var v = objs[0].Clone();
            v.Set(XenApi.VM.PowerState, state);
            tx.Update(v);
        }, cancellationToken);

    private async Task ChangeMediumAsync(XenObject vm, string vbdRef, string vdiRef, CancellationToken cancellationToken)
    {
        var vbd = await database.GetAsync(XenClasses.VBD, vbdRef, cancellationToken);
        var index = DeviceNumbers.DiskIndex(vbd.Get(XenApi.VBD.Userdevice)) ?? throw new XenApiException(ErrorCodes.InvalidDevice, vbd.Get(XenApi.VBD.Userdevice));
        string? path = null;
        if (!OpaqueRef.IsNull(vdiRef))
        {
            path = (await devices.ResolveVdiAsync(vm.Ref, vdiRef, cancellationToken)).Path;
        }

        await Process(vm).ChangeMediumAsync(index, path, cancellationToken);
        await database.UpdateAsync([(XenClasses.VBD, vbdRef)], (objs, tx) =>
        {
            var v = objs[0].Clone();
            v.Set(XenApi.VBD.VDI, path is null ? OpaqueRef.Null : vdiRef);
            v.Set(XenApi.VBD.Empty, path is null);
            tx.Update(v);
        }, cancellationToken);
    }
}
