using System.Globalization;
using Corral.Agent.Hosting;
using Corral.Agent.Operations;
using Corral.Agent.Storage;
using Corral.Api.Operations;
using Corral.Hypervisor;
using Corral.Model;
using Corral.Networking;
using Corral.PoolDatabase;
using Corral.Storage;
using Microsoft.Extensions.Options;

namespace Corral.Agent.Vms;

/// <summary>The VM lifecycle on this host: start, shutdown, reboot, pause, CD changes.</summary>
public sealed class VmOperationHandler(
    IPoolDatabase database,
    IHypervisor hypervisor,
    VmSupervisor supervisor,
    HostIdentity identity,
    HostLiveness liveness,
    BridgeNetworking networking,
    SrDrivers drivers,
    IOptions<AgentOptions> options,
    ILogger<VmOperationHandler> logger) : IHostOperationHandler
{
    /// <summary>Key of <c>VM.platform</c> choosing the device model: "virtio" (default) or "emulated".</summary>
    public const string DevicesPlatformKey = "corral-devices";

    public IReadOnlyCollection<string> Kinds { get; } =
    [
        HostOperationKinds.VmStart, HostOperationKinds.VmCleanShutdown, HostOperationKinds.VmHardShutdown, HostOperationKinds.VmCleanReboot,
        HostOperationKinds.VmHardReboot, HostOperationKinds.VmPause, HostOperationKinds.VmUnpause, HostOperationKinds.VmChangeMedium,
    ];

    public async Task<string?> ExecuteAsync(HostOperation operation, OperationProgress progress, CancellationToken cancellationToken)
    {
        var vm = await database.GetAsync(XenClasses.VM, operation.Target, cancellationToken).ConfigureAwait(false);
        switch (operation.Kind)
        {
            case HostOperationKinds.VmStart:
                await StartAsync(vm, operation, progress, cancellationToken).ConfigureAwait(false);
                break;
            case HostOperationKinds.VmCleanShutdown:
                await ShutdownAsync(vm, operation.Argument("fallback_hard") == "true", cancellationToken).ConfigureAwait(false);
                break;
            case HostOperationKinds.VmHardShutdown:
                await HardShutdownAsync(vm, cancellationToken).ConfigureAwait(false);
                break;
            case HostOperationKinds.VmCleanReboot:
                await Process(vm).RequestRebootAsync(cancellationToken).ConfigureAwait(false);
                await RecordRestartAsync(vm, cancellationToken).ConfigureAwait(false);
                break;
            case HostOperationKinds.VmHardReboot:
                await Process(vm).ResetAsync(cancellationToken).ConfigureAwait(false);
                await RecordRestartAsync(vm, cancellationToken).ConfigureAwait(false);
                break;
            case HostOperationKinds.VmPause:
                await Process(vm).PauseAsync(cancellationToken).ConfigureAwait(false);
                await SetPowerStateAsync(vm.Ref, "Paused", cancellationToken).ConfigureAwait(false);
                break;
            case HostOperationKinds.VmUnpause:
                await Process(vm).ResumeAsync(cancellationToken).ConfigureAwait(false);
                await SetPowerStateAsync(vm.Ref, "Running", cancellationToken).ConfigureAwait(false);
                break;
            case HostOperationKinds.VmChangeMedium:
                await ChangeMediumAsync(vm, operation.Argument("vbd"), operation.Argument("vdi"), cancellationToken).ConfigureAwait(false);
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
                await RecordRunningAsync(vm, running, operation.Argument("domid"), reservation, cancellationToken).ConfigureAwait(false);
                return;
            }

            if (vm.GetString("power_state") != "Halted")
            {
                throw new XenApiException(ErrorCodes.VmBadPowerState, vm.Ref, "halted", vm.GetString("power_state").ToLowerInvariant());
            }

            // The ownership claim rides on this host's lease: while it exists no other host may run this VM.
            var lease = liveness.Lease ?? throw new XenApiException(ErrorCodes.HostOffline, identity.Ref);
            if (!await database.Leases.TryClaimAsync(lease, PoolKeys.VmOwnerKey(vm.Ref), identity.Ref, cancellationToken).ConfigureAwait(false)
                && await database.Leases.GetValueAsync(PoolKeys.VmOwnerKey(vm.Ref), cancellationToken).ConfigureAwait(false) != identity.Ref)
            {
                throw new XenApiException(ErrorCodes.OtherOperationInProgress, XenClasses.VM, vm.Ref);
            }

            var domid = operation.Argument("domid");
            if (string.IsNullOrEmpty(domid))
            {
                domid = HostIdentity.NextDomid(options.Value.StateDirectory).ToString(CultureInfo.InvariantCulture);
                await progress.StepAsync("claimed", cancellationToken, new Dictionary<string, string> { ["domid"] = domid }).ConfigureAwait(false);
            }

            var (spec, devices) = await BuildSpecAsync(vm, long.Parse(domid, CultureInfo.InvariantCulture), cancellationToken).ConfigureAwait(false);
            await progress.StepAsync("launching", cancellationToken).ConfigureAwait(false);
            IVmProcess process;
            try
            {
                process = await hypervisor.StartAsync(spec, cancellationToken).ConfigureAwait(false);
            }
            catch (VmStartException ex)
            {
                await database.Leases.DeleteIfValueAsync(PoolKeys.VmOwnerKey(vm.Ref), identity.Ref, CancellationToken.None).ConfigureAwait(false);
                throw new XenApiException(ErrorCodes.VmStartFailed, vm.Ref, ex.Message);
            }

            if (operation.Argument("paused") == "true")
            {
                await process.PauseAsync(cancellationToken).ConfigureAwait(false);
            }

            await RecordRunningAsync(vm, process, domid, reservation, cancellationToken).ConfigureAwait(false);
            supervisor.Track(vm.Ref, process);
            await RecordDeviceNamesAsync(devices, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await ClearReservationAsync(vm.Ref, reservation).ConfigureAwait(false);
        }
    }

    private async Task ClearReservationAsync(string vmRef, string reservation)
    {
        await database.UpdateAsync([(XenClasses.VM, vmRef)], (objs, tx) =>
        {
            var v = objs[0].Clone();
            var ops = (Dictionary<string, object?>)v["current_operations"]!;
            if (ops.Remove(reservation))
            {
                v["current_operations"] = ops;
                if (v.GetString("power_state") == "Halted")
                {
                    v["scheduled_to_be_resident_on"] = OpaqueRef.Null;
                }

                tx.Update(v);
            }
        }, CancellationToken.None).ConfigureAwait(false);
    }

    private async Task RecordRunningAsync(XenObject vm, IVmProcess process, string domid, string reservation, CancellationToken cancellationToken)
    {
        var state = await process.QueryStateAsync(cancellationToken).ConfigureAwait(false);
        await database.UpdateAsync([(XenClasses.VM, vm.Ref)], (objs, tx) =>
        {
            var v = objs[0].Clone();
            v["power_state"] = state == VmRunState.Paused ? "Paused" : "Running";
            v["resident_on"] = identity.Ref;
            v["scheduled_to_be_resident_on"] = OpaqueRef.Null;
            v["domid"] = long.Parse(domid, CultureInfo.InvariantCulture);
            var ops = (Dictionary<string, object?>)v["current_operations"]!;
            ops.Remove(reservation);
            v["current_operations"] = ops;
            tx.Update(v);
        }, cancellationToken).ConfigureAwait(false);
        await RecordRestartAsync(vm, cancellationToken).ConfigureAwait(false);
        await supervisor.SetAttachedAsync(vm, true, cancellationToken).ConfigureAwait(false);
    }

    private async Task RecordRestartAsync(XenObject vm, CancellationToken cancellationToken)
    {
        if (await database.TryGetAsync(XenClasses.VMMetrics, vm.GetString("metrics"), cancellationToken).ConfigureAwait(false) is null)
        {
            return;
        }

        await database.UpdateAsync([(XenClasses.VMMetrics, vm.GetString("metrics"))], (objs, tx) =>
        {
            var m = objs[0].Clone();
            m["start_time"] = DateTime.UtcNow;
            m["memory_actual"] = vm.GetInt("memory_static_max");
            m["VCPUs_number"] = vm.GetInt("VCPUs_at_startup");
            m["last_updated"] = DateTime.UtcNow;
            m["state"] = new List<object?>();
            tx.Update(m);
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Records each VBD's device as the guest sees it (vda... for virtio disks, hda... on the IDE bus).</summary>
    private async Task RecordDeviceNamesAsync(IReadOnlyDictionary<string, string> devices, CancellationToken cancellationToken)
    {
        foreach (var (vbdRef, device) in devices)
        {
            await database.UpdateAsync([(XenClasses.VBD, vbdRef)], (objs, tx) =>
            {
                if (objs[0].GetString("device") != device)
                {
                    var v = objs[0].Clone();
                    v["device"] = device;
                    tx.Update(v);
                }
            }, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The launch spec of a VM on this host (its disks resolved through this host's PBDs, its taps made on this host's
    /// bridges) and the guest device name of each VBD.
    /// </summary>
    /// <param name="diskOverrides">VBD ref to the image QEMU opens instead of the VBD's VDI (a storage migration's new copies).</param>
    public async Task<(VmLaunchSpec Spec, IReadOnlyDictionary<string, string> Devices)> BuildSpecAsync(XenObject vm, long domid, CancellationToken cancellationToken,
        IReadOnlyDictionary<string, (string Path, string Format)>? diskOverrides = null)
    {
        var paravirtual = vm.GetStringMap("platform").GetValueOrDefault(DevicesPlatformKey, "virtio") != "emulated";
        var disks = new List<DiskSpec>();
        var vbdByIndex = new Dictionary<int, string>();
        foreach (var vbdRef in vm.GetSet("VBDs"))
        {
            var vbd = await database.GetAsync(XenClasses.VBD, vbdRef, cancellationToken).ConfigureAwait(false);
            var index = int.Parse(vbd.GetString("userdevice"), CultureInfo.InvariantCulture);
            var isCd = vbd.GetString("type") == "CD";
            string? path = null;
            var format = "raw";
            if (diskOverrides?.GetValueOrDefault(vbdRef) is { Path: not null } overridden)
            {
                (path, format) = overridden;
            }
            else if (!vbd.GetBool("empty") && !OpaqueRef.IsNull(vbd.GetString("VDI")))
            {
                (path, format) = await ResolveVdiAsync(vm.Ref, vbd.GetString("VDI"), cancellationToken).ConfigureAwait(false);
            }

            disks.Add(new DiskSpec(index, path, format, vbd.GetString("mode") == "RO" || isCd, isCd, vbd.GetBool("bootable") || index == 0));
            vbdByIndex[index] = vbdRef;
        }

        // The same order QemuCommandLine assigns buses in: virtio disks in index order, then the IDE slots.
        var devices = new Dictionary<string, string>(StringComparer.Ordinal);
        int virtio = 0, ide = 0;
        foreach (var disk in disks.OrderBy(d => d.Index))
        {
            var name = !disk.IsCdrom && paravirtual ? $"vd{(char)('a' + virtio++)}" : $"hd{(char)('a' + ide++)}";
            devices[vbdByIndex[disk.Index]] = name;
        }

        var nics = new List<NicSpec>();
        foreach (var vifRef in vm.GetSet("VIFs"))
        {
            var vif = await database.GetAsync(XenClasses.VIF, vifRef, cancellationToken).ConfigureAwait(false);
            var network = await database.GetAsync(XenClasses.Network, vif.GetString("network"), cancellationToken).ConfigureAwait(false);
            var bridge = network.GetString("bridge");
            var tap = BridgeNetworking.TapName(domid, vif.GetString("device"));
            await networking.EnsureBridgeAsync(bridge, cancellationToken).ConfigureAwait(false);
            await networking.EnsureTapAsync(tap, bridge, (int)network.GetInt("MTU"), cancellationToken).ConfigureAwait(false);
            nics.Add(new NicSpec(int.Parse(vif.GetString("device"), CultureInfo.InvariantCulture), tap, vif.GetString("MAC")));
        }

        // Guest configuration travels as XenServer's vm-data does: xenstore_data keys under vm-data/.
        var firmware = vm.GetStringMap("xenstore_data")
            .Where(kv => kv.Key.StartsWith("vm-data/", StringComparison.Ordinal))
            .ToDictionary(kv => kv.Key, kv => kv.Value);
        var spec = new VmLaunchSpec(vm.Uuid, vm.GetString("name_label"), vm.GetInt("memory_static_max"), (int)Math.Max(1, vm.GetInt("VCPUs_at_startup")),
            paravirtual, disks.OrderBy(d => d.Index).ToList(), nics.OrderBy(n => n.Index).ToList(), firmware);
        return (spec, devices);
    }

    private async Task<(string Path, string Format)> ResolveVdiAsync(string vmRef, string vdiRef, CancellationToken cancellationToken)
    {
        var vdi = await database.GetAsync(XenClasses.VDI, vdiRef, cancellationToken).ConfigureAwait(false);
        var sr = await database.GetAsync(XenClasses.SR, vdi.GetString("SR"), cancellationToken).ConfigureAwait(false);
        var directory = await StorageOperationHandler.LocalDirectoryAsync(database, sr, identity.Ref, cancellationToken).ConfigureAwait(false)
                        ?? throw new XenApiException(ErrorCodes.VmRequiresSr, vmRef, sr.Ref);
        return drivers.Get(sr.GetString("type")).Resolve(directory, vdi.GetString("location"));
    }

    private async Task ShutdownAsync(XenObject vm, bool fallbackHard, CancellationToken cancellationToken)
    {
        var process = Process(vm);
        await process.RequestShutdownAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await process.Exited.WaitAsync(options.Value.CleanShutdownTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            if (!fallbackHard)
            {
                throw new XenApiException(ErrorCodes.VmShutdownTimeout, vm.Ref,
                    options.Value.CleanShutdownTimeout.TotalSeconds.ToString(CultureInfo.InvariantCulture));
            }

            logger.LogInformation("VM {Vm} did not shut down cleanly in time; forcing it off", vm.Ref);
            await process.KillAsync(cancellationToken).ConfigureAwait(false);
        }

        await supervisor.MarkHaltedAsync(vm.Ref, cancellationToken).ConfigureAwait(false);
    }

    private async Task HardShutdownAsync(XenObject vm, CancellationToken cancellationToken)
    {
        if (supervisor.Find(vm.Uuid) is { } process)
        {
            await process.KillAsync(cancellationToken).ConfigureAwait(false);
        }

        await supervisor.MarkHaltedAsync(vm.Ref, cancellationToken).ConfigureAwait(false);
    }

    private async Task SetPowerStateAsync(string vmRef, string state, CancellationToken cancellationToken) =>
        await database.UpdateAsync([(XenClasses.VM, vmRef)], (objs, tx) =>
        {
            var v = objs[0].Clone();
            v["power_state"] = state;
            tx.Update(v);
        }, cancellationToken).ConfigureAwait(false);

    private async Task ChangeMediumAsync(XenObject vm, string vbdRef, string vdiRef, CancellationToken cancellationToken)
    {
        var vbd = await database.GetAsync(XenClasses.VBD, vbdRef, cancellationToken).ConfigureAwait(false);
        var index = int.Parse(vbd.GetString("userdevice"), CultureInfo.InvariantCulture);
        string? path = null;
        if (!OpaqueRef.IsNull(vdiRef))
        {
            path = (await ResolveVdiAsync(vm.Ref, vdiRef, cancellationToken).ConfigureAwait(false)).Path;
        }

        await Process(vm).ChangeMediumAsync(index, path, cancellationToken).ConfigureAwait(false);
        await database.UpdateAsync([(XenClasses.VBD, vbdRef)], (objs, tx) =>
        {
            var v = objs[0].Clone();
            v["VDI"] = path is null ? OpaqueRef.Null : vdiRef;
            v["empty"] = path is null;
            tx.Update(v);
        }, cancellationToken).ConfigureAwait(false);
    }
}
