using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;

namespace Corral.Hypervisor.Qemu;

/// <summary>
/// The devices of one running QEMU and their hot-plug: disks (blockdev-add, then device_add of a virtio-blk-pci) and
/// network cards (netdev_add of the tap, then device_add), each at an explicit PCI slot; removal asks the guest
/// (device_del, an ACPI eject request) and completes when QEMU reports DEVICE_DELETED, however late. Every change is
/// written to the runtime directory's vm.json, so that an agent adopting the process after a restart, and a live
/// migration's destination, know the devices as they are now. Each step can be asked again: a device already there is
/// not added twice, one already gone is not removed twice.
/// </summary>
internal sealed class QemuDevices(
    VmLaunchSpec spec,
    VmRuntimePaths paths,
    QmpClient qmp,
    Func<DiskSpec, DiskCacheMode> cacheMode,
    ILogger logger,
    Action<VmDevice> removed) : IDisposable
{
    private const string Peripheral = "/machine/peripheral/";
    private readonly SemaphoreSlim _lock = new(1, 1);
    private readonly ConcurrentDictionary<string, (VmDevice Device, TaskCompletionSource Gone)> _removing = new(StringComparer.Ordinal);
    private VmLaunchSpec _spec = spec;

    public VmLaunchSpec Spec => Volatile.Read(ref _spec);

    public async Task<DiskSpec> AttachDiskAsync(DiskSpec disk, CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken);
        try
        {
            if (Spec.Disks.FirstOrDefault(d => d.Index == disk.Index) is { } present)
            {
                return present.Path == disk.Path
                    ? present
                    : throw new DeviceHotplugException($"disk {disk.Index} is attached already, to {QemuBlockProtocol.Redacted(present.Path ?? "")}");
            }

            if (!PciLayout.IsPci(disk, Spec.Paravirtual) || disk.Path is null)
            {
                throw new DeviceHotplugException(disk.IsCdrom
                    ? "a CD drive sits on the IDE controller, which takes no hot-plugged devices"
                    : "the disks of a VM with emulated devices sit on the IDE controller, which takes no hot-plugged devices");
            }

            var node = QemuCommandLine.DriveId(disk.Index);
            var id = QemuCommandLine.DiskDeviceId(disk.Index);
            var addedNode = false;
            if (!await NodeExistsAsync(node, cancellationToken))
            {
                await AddNodeAsync(disk, node, cancellationToken);
                addedNode = true;
            }

            try
            {
                await AddDeviceAsync(id, disk.PciSlot, new JsonObject { ["driver"] = "virtio-blk-pci", ["drive"] = node, ["num-queues"] = QemuCommandLine.DiskQueues(Spec) }, cancellationToken);
            }
            catch (DeviceHotplugException) when (addedNode)
            {
                await TryAsync("blockdev-del", new JsonObject { ["node-name"] = node }, CancellationToken.None);
                await DeleteSecretAsync(disk, CancellationToken.None);
                throw;
            }

            var attached = disk with { PciSlot = await SlotOfAsync(id, cancellationToken) };
            await SaveAsync(Spec with { Disks = [.. Spec.Disks.Append(attached).OrderBy(d => d.Index)] }, cancellationToken);
            logger.LogInformation("VM {Vm}: disk {Index} ({Path}) plugged at PCI slot {Slot}", Spec.VmUuid, disk.Index, QemuBlockProtocol.Redacted(disk.Path), attached.PciSlot);
            return attached;
        }
        finally
        {
            _lock.Release();
        }
    }

    public async Task<NicSpec> AttachNicAsync(NicSpec nic, CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken);
        try
        {
            if (Spec.Nics.FirstOrDefault(n => n.Index == nic.Index) is { } present)
            {
                return present.Mac.Equals(nic.Mac, StringComparison.OrdinalIgnoreCase) ? present
                    : throw new DeviceHotplugException($"network card {nic.Index} is attached already, with MAC {present.Mac}");
            }

            var netdev = QemuCommandLine.NetdevId(nic.Index);
            var id = QemuCommandLine.NicDeviceId(nic.Index);
            try
            {
                await qmp.ExecuteAsync("netdev_add", new JsonObject
                {
                    ["type"] = "tap",
                    ["id"] = netdev,
                    ["ifname"] = nic.TapName,
                    ["script"] = "no",
                    ["downscript"] = "no",
                }, cancellationToken);
            }
            catch (QmpException ex) when (ex.ErrorClass == "GenericError" && ex.Description.Contains("Duplicate", StringComparison.Ordinal))
            {
                logger.LogDebug("VM {Vm}: {Netdev} was added by an earlier attempt that did not get as far as the device", Spec.VmUuid, netdev);
            }
            catch (QmpException ex)
            {
                throw new DeviceHotplugException($"QEMU could not open tap {nic.TapName}: {ex.Description}", ex);
            }

            try
            {
                await AddDeviceAsync(id, nic.PciSlot, new JsonObject
                {
                    ["driver"] = QemuCommandLine.NicModel(Spec.Paravirtual),
                    ["netdev"] = netdev,
                    ["mac"] = nic.Mac.ToLowerInvariant(),
                }, cancellationToken);
            }
            catch (DeviceHotplugException)
            {
                await TryAsync("netdev_del", new JsonObject { ["id"] = netdev }, CancellationToken.None);
                throw;
            }

            var attached = nic with { PciSlot = await SlotOfAsync(id, cancellationToken) };
            await SaveAsync(Spec with { Nics = [.. Spec.Nics.Append(attached).OrderBy(n => n.Index)] }, cancellationToken);
            logger.LogInformation("VM {Vm}: network card {Index} ({Mac} on {Tap}) plugged at PCI slot {Slot}", Spec.VmUuid, nic.Index, nic.Mac, nic.TapName, attached.PciSlot);
            return attached;
        }
        finally
        {
            _lock.Release();
        }
    }

    public async Task<bool> DetachAsync(VmDevice device, TimeSpan timeout, CancellationToken cancellationToken)
    {
        Task gone;
        await _lock.WaitAsync(cancellationToken);
        try
        {
            var slot = SlotInSpec(device, out var present);
            if (!present)
            {
                return true;
            }

            if (slot is null)
            {
                throw new DeviceHotplugException($"{Describe(device)} sits on the IDE controller, which cannot remove devices from a running guest");
            }

            if (await PathOfAsync(device, slot.Value, cancellationToken) is not { } path)
            {
                // QEMU has it no more (removed while nobody was listening): only the record is left to update.
                await ForgetAsync(device, cancellationToken);
                return true;
            }

            var pending = _removing.GetOrAdd(path, _ => (device, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)));
            gone = pending.Gone.Task;
            logger.LogInformation("VM {Vm}: asking the guest to release {Device} ({Path})", Spec.VmUuid, Describe(device), path);
            await RunAsync("device_del", new JsonObject { ["id"] = path }, cancellationToken);
        }
        finally
        {
            _lock.Release();
        }

        try
        {
            await gone.WaitAsync(timeout, cancellationToken);
            return true;
        }
        catch (TimeoutException)
        {
            logger.LogWarning("VM {Vm}: the guest has not released {Device} within {Seconds} s; the request stays pending", Spec.VmUuid, Describe(device),
                timeout.TotalSeconds);
            return false;
        }
    }

    /// <summary>QMP's DEVICE_DELETED, seen on the connection's reader: the rest (QMP commands) runs apart.</summary>
    public void OnDeviceDeleted(JsonObject? data)
    {
        var path = data?["path"]?.GetValue<string>() ?? "";
        VmDevice? device = _removing.TryGetValue(path, out var pending) ? pending.Device : OwnDevice(path);
        if (device is null)
        {
            return; // a part of a device (its virtio backend), or a device Corral did not name
        }

        _ = Task.Run(async () =>
        {
            try
            {
                await _lock.WaitAsync(CancellationToken.None);
                try
                {
                    await ForgetAsync(device, CancellationToken.None);
                }
                finally
                {
                    _lock.Release();
                }

                if (_removing.TryRemove(path, out var done))
                {
                    done.Gone.TrySetResult();
                }

                removed(device);
            }
            catch (ObjectDisposedException)
            {
                // Let go of meanwhile: the next agent to adopt the process finds the device gone and completes the record.
            }
            catch (Exception ex)
            {
                logger.LogError(ex, "VM {Vm}: could not complete the removal of {Device}", Spec.VmUuid, Describe(device));
            }
        });
    }

    /// <summary>A device named as Corral names them (<c>/machine/peripheral/vbd2</c>), or null.</summary>
    private static VmDevice? OwnDevice(string path)
    {
        if (!path.StartsWith(Peripheral, StringComparison.Ordinal))
        {
            return null;
        }

        var id = path[Peripheral.Length..];
        foreach (var (prefix, kind) in new[] { ("vbd", VmDeviceKind.Disk), ("vif", VmDeviceKind.Nic) })
        {
            if (id.StartsWith(prefix, StringComparison.Ordinal)
                && int.TryParse(id[prefix.Length..], NumberStyles.None, CultureInfo.InvariantCulture, out var index))
            {
                return new VmDevice(kind, index);
            }
        }

        return null;
    }

    /// <summary>Drops a removed device from the spec and lets go of what backed it (the disk's image, the tap's file descriptor).</summary>
    private async Task ForgetAsync(VmDevice device, CancellationToken cancellationToken)
    {
        if (device.Kind == VmDeviceKind.Disk)
        {
            // A disk plugged at run time has a block node of its own; one from the command line went with its device.
            var node = QemuCommandLine.DriveId(device.Index);
            if (await NodeExistsAsync(node, cancellationToken))
            {
                await TryAsync("blockdev-del", new JsonObject { ["node-name"] = node }, cancellationToken);
                if (Spec.Disks.FirstOrDefault(d => d.Index == device.Index) is { } disk)
                {
                    await DeleteSecretAsync(disk, cancellationToken);
                }
            }
        }
        else
        {
            await TryAsync("netdev_del", new JsonObject { ["id"] = QemuCommandLine.NetdevId(device.Index) }, cancellationToken);
        }

        SlotInSpec(device, out var present);
        if (present)
        {
            await SaveAsync(device.Kind == VmDeviceKind.Disk
                ? Spec with { Disks = [.. Spec.Disks.Where(d => d.Index != device.Index)] }
                : Spec with { Nics = [.. Spec.Nics.Where(n => n.Index != device.Index)] }, cancellationToken);
            logger.LogInformation("VM {Vm}: {Device} removed", Spec.VmUuid, Describe(device));
        }
    }

    private int? SlotInSpec(VmDevice device, out bool present)
    {
        if (device.Kind == VmDeviceKind.Disk)
        {
            var disk = Spec.Disks.FirstOrDefault(d => d.Index == device.Index);
            present = disk is not null;
            return disk is not null && PciLayout.IsPci(disk, Spec.Paravirtual) ? disk.PciSlot : null;
        }

        var nic = Spec.Nics.FirstOrDefault(n => n.Index == device.Index);
        present = nic is not null;
        return nic?.PciSlot;
    }

    /// <summary>
    /// The QOM path device_del takes: <c>/machine/peripheral/&lt;id&gt;</c>; for a device of a VM started before
    /// Corral named its devices, the anonymous device at the device's PCI slot. Null when QEMU has no such device.
    /// </summary>
    private async Task<string?> PathOfAsync(VmDevice device, int slot, CancellationToken cancellationToken)
    {
        var id = device.Kind == VmDeviceKind.Disk ? QemuCommandLine.DiskDeviceId(device.Index) : QemuCommandLine.NicDeviceId(device.Index);
        if (await PeripheralExistsAsync(id, cancellationToken))
        {
            return Peripheral + id;
        }

        var anonymous = await qmp.ExecuteAsync("qom-list", new JsonObject { ["path"] = "/machine/peripheral-anon" }, cancellationToken);
        foreach (var child in (anonymous as JsonArray ?? []).OfType<JsonObject>())
        {
            var path = "/machine/peripheral-anon/" + child["name"]?.GetValue<string>();
            if (child["type"]?.GetValue<string>()?.StartsWith("child<", StringComparison.Ordinal) != true)
            {
                continue;
            }

            try
            {
                var devfn = await qmp.ExecuteAsync("qom-get", new JsonObject { ["path"] = path, ["property"] = "addr" }, cancellationToken);
                if (devfn?.GetValue<int>() == slot << 3)
                {
                    return path;
                }
            }
            catch (QmpException ex) when (ex is not QmpDisconnectedException)
            {
                logger.LogDebug("VM {Vm}: {Path} is no PCI device ({Error})", Spec.VmUuid, path, ex.Description);
            }
        }

        return null;
    }

    private async Task AddDeviceAsync(string id, int? slot, JsonObject arguments, CancellationToken cancellationToken)
    {
        if (await PeripheralExistsAsync(id, cancellationToken))
        {
            return; // added by an earlier attempt
        }

        var chosen = slot ?? PciLayout.NextFree(Spec) ?? throw new DeviceHotplugException($"no PCI slot left for {id}");
        arguments["id"] = id;
        arguments["bus"] = "pci.0";
        arguments["addr"] = PciLayout.Address(chosen);
        await RunAsync("device_add", arguments, cancellationToken);
    }

    private async Task<int> SlotOfAsync(string id, CancellationToken cancellationToken)
    {
        var buses = await qmp.ExecuteAsync("query-pci", null, cancellationToken) as JsonArray ?? [];
        foreach (var device in buses.OfType<JsonObject>().SelectMany(b => b["devices"] as JsonArray ?? []).OfType<JsonObject>())
        {
            if (device["qdev_id"]?.GetValue<string>() == id)
            {
                return device["slot"]!.GetValue<int>();
            }
        }

        throw new DeviceHotplugException($"QEMU added {id} but does not list it on the PCI bus");
    }

    private async Task<bool> PeripheralExistsAsync(string id, CancellationToken cancellationToken)
    {
        var children = await qmp.ExecuteAsync("qom-list", new JsonObject { ["path"] = "/machine/peripheral" }, cancellationToken);
        return (children as JsonArray ?? []).OfType<JsonObject>().Any(c => c["name"]?.GetValue<string>() == id);
    }

    private async Task<bool> NodeExistsAsync(string node, CancellationToken cancellationToken)
    {
        var nodes = await qmp.ExecuteAsync("query-named-block-nodes", new JsonObject { ["flat"] = true }, cancellationToken);
        return (nodes as JsonArray ?? []).OfType<JsonObject>().Any(n => n["node-name"]?.GetValue<string>() == node);
    }

    /// <summary>The disk's block node; a CHAP LUN's password first, as a secret object sent over QMP (never a file or an argument).</summary>
    private async Task AddNodeAsync(DiskSpec disk, string node, CancellationToken cancellationToken)
    {
        if (QemuBlockProtocol.Credentials(disk.Path!) is var (_, password))
        {
            await RunAsync("object-add", new JsonObject { ["qom-type"] = "secret", ["id"] = QemuCommandLine.ChapSecretId(disk.Index), ["data"] = password }, cancellationToken);
        }

        try
        {
            await RunAsync("blockdev-add", BlockdevOptions(disk, node), cancellationToken);
        }
        catch (DeviceHotplugException)
        {
            await DeleteSecretAsync(disk, CancellationToken.None);
            throw;
        }
    }

    private async Task DeleteSecretAsync(DiskSpec disk, CancellationToken cancellationToken)
    {
        if (disk.Path is not null && QemuBlockProtocol.Credentials(disk.Path) is not null)
        {
            await TryAsync("object-del", new JsonObject { ["id"] = QemuCommandLine.ChapSecretId(disk.Index) }, cancellationToken);
        }
    }

    private JsonObject BlockdevOptions(DiskSpec disk, string node)
    {
        var cache = new JsonObject { ["direct"] = cacheMode(disk) == DiskCacheMode.None, ["no-flush"] = false };
        var file = QemuBlockProtocol.For(disk.Path!, QemuCommandLine.ChapSecretId(disk.Index));
        file["read-only"] = disk.ReadOnly;
        file["discard"] = "unmap";
        file["cache"] = cache;
        var format = new JsonObject
        {
            ["driver"] = disk.Format,
            ["node-name"] = node,
            ["read-only"] = disk.ReadOnly,
            ["discard"] = "unmap",
            ["cache"] = cache.DeepClone(),
            ["file"] = file,
        };
        QemuBlockProtocol.AddExtent(format, disk.Path!);
        return format;
    }

    /// <summary>A QMP command whose refusal is a hot-plug failure the caller reports.</summary>
    private async Task RunAsync(string command, JsonObject arguments, CancellationToken cancellationToken)
    {
        try
        {
            await qmp.ExecuteAsync(command, arguments, cancellationToken);
        }
        catch (QmpException ex) when (ex is not QmpDisconnectedException)
        {
            throw new DeviceHotplugException($"QEMU refused {command}: {ex.Description}", ex);
        }
    }

    /// <summary>A clean-up command whose failure only needs telling (the device may be gone already).</summary>
    private async Task TryAsync(string command, JsonObject arguments, CancellationToken cancellationToken)
    {
        try
        {
            await qmp.ExecuteAsync(command, arguments, cancellationToken);
        }
        catch (QmpException ex) when (ex is not QmpDisconnectedException)
        {
            logger.LogDebug("VM {Vm}: {Command} {Arguments}: {Error}", Spec.VmUuid, command, arguments.ToJsonString(), ex.Description);
        }
    }

    /// <summary>Writes the spec to vm.json (a new file renamed over the old, so a crash leaves one or the other) and makes it current.</summary>
    private async Task SaveAsync(VmLaunchSpec next, CancellationToken cancellationToken)
    {
        var temporary = paths.Spec + ".tmp";
        await File.WriteAllTextAsync(temporary, JsonSerializer.Serialize(next), cancellationToken);
        File.Move(temporary, paths.Spec, overwrite: true);
        Volatile.Write(ref _spec, next);
    }

    /// <summary>
    /// Runs a change to the VM's hardware other than its PCI devices (its vCPUs) under the same lock, and records the
    /// spec it leaves in vm.json (for the agent that adopts the process, and a migration's destination).
    /// </summary>
    public async Task<T> ChangeAsync<T>(Func<VmLaunchSpec, CancellationToken, Task<(VmLaunchSpec Next, T Result)>> change, CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken);
        try
        {
            var (next, result) = await change(Spec, cancellationToken);
            if (next != Spec)
            {
                await SaveAsync(next, cancellationToken);
            }

            return result;
        }
        finally
        {
            _lock.Release();
        }
    }

    public void Dispose() => _lock.Dispose();

    private static string Describe(VmDevice device) =>
        device.Kind == VmDeviceKind.Disk ? $"disk {device.Index}" : $"network card {device.Index}";
}
