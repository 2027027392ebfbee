using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Corral.Hypervisor.Qemu.GuestAgent;
using Microsoft.Extensions.Logging;

namespace Corral.Hypervisor.Qemu;

/// <summary>
/// Live resize of one running QEMU: vCPUs plugged in and out (<c>query-hotpluggable-cpus</c>, <c>device_add</c> of the
/// CPU model into an empty socket, <c>device_del</c> answered by the guest's ACPI eject), the memory balloon's target
/// (<c>balloon</c>, <c>query-balloon</c>) and a disk's size (<c>block_resize</c>). vCPUs are added at the lowest empty
/// slots (socket, core, thread) and removed from the highest, one at a time, so the guest's CPUs are always the first n:
/// exactly what a migration's destination started with <c>-smp n,maxcpus=max</c> has (its disks pinned to the source's
/// queue count, <see cref="QemuCommandLine.DiskQueues"/>, which QEMU would otherwise derive from n).
/// </summary>
internal sealed class QemuResize(QemuDevices devices, QmpClient qmp, QgaGuestTools? qga, ILogger logger)
{
    private const int SectorBytes = 512;

    /// <summary>One CPU socket of the machine, empty (<paramref name="QomPath"/> null) or holding a vCPU.</summary>
    private sealed record CpuSlot(string Type, JsonObject Props, string? QomPath, long Order);

    public async Task<int> SetVcpusAsync(int count, TimeSpan timeout, CancellationToken cancellationToken) =>
        await devices.ChangeAsync(async (spec, token) =>
        {
            var max = spec.MaxVcpus ?? spec.Vcpus;
            if (count < 1 || count > max)
            {
                throw new DeviceHotplugException($"{count} vCPUs: this VM takes 1 to {max} while it runs");
            }

            var slots = await CpuSlotsAsync(token);
            var present = slots.Count(s => s.QomPath is not null);
            if (count < present && !await CanUnplugVcpusAsync(token))
            {
                throw new DeviceHotplugException(
                    $"the VM has {present} vCPUs and runs under TCG, where QEMU cannot migrate a VM once a vCPU has been unplugged (the migration hangs in setup or QEMU crashes); it starts with fewer at its next boot");
            }
            foreach (var slot in slots.Where(s => s.QomPath is null).Take(Math.Max(0, count - present)))
            {
                var arguments = (JsonObject)slot.Props.DeepClone();
                arguments["driver"] = slot.Type;
                arguments["id"] = "vcpu" + slot.Order.ToString(CultureInfo.InvariantCulture);
                await RunAsync("device_add", arguments, token);
            }

            // Highest first, each gone before the next is asked for, so what stays is always the first sockets.
            foreach (var slot in slots.Where(s => s.QomPath is not null).Reverse().Take(Math.Max(0, present - count)))
            {
                await UnplugCpuAsync(slot, timeout, token);
            }

            var now = (await CpuSlotsAsync(token)).Count(s => s.QomPath is not null);
            if (now > present)
            {
                await OnlineGuestCpusAsync(spec.VmUuid, now, timeout, token);
            }

            logger.LogInformation("VM {Vm}: {Before} vCPUs -> {After}", spec.VmUuid, present, now);
            // The disks keep the queues they were given for the vCPUs the process started with.
            return (spec with { Vcpus = now, DiskQueues = QemuCommandLine.DiskQueues(spec) }, now);
        }, cancellationToken);

    /// <summary>
    /// Whether vCPUs may be taken out: under KVM. Under TCG (QEMU 7.2, Debian 12's), a VM that has had a vCPU unplugged
    /// cannot be live migrated any more: the migration stays in setup, or the source QEMU dies; a VM must stay movable.
    /// </summary>
    public async Task<bool> CanUnplugVcpusAsync(CancellationToken cancellationToken) =>
        (await qmp.ExecuteAsync("query-kvm", null, cancellationToken))?["enabled"]?.GetValue<bool>() == true;

    /// <summary>The machine's CPU sockets in order (socket, die, core, thread), QEMU listing them the other way round.</summary>
    private async Task<List<CpuSlot>> CpuSlotsAsync(CancellationToken cancellationToken)
    {
        var reply = await qmp.ExecuteAsync("query-hotpluggable-cpus", null, cancellationToken) as JsonArray ?? [];
        static long Id(JsonObject props, string name) => props[name]?.GetValue<long>() ?? 0;
        return reply.OfType<JsonObject>()
            .Select(c => (Props: c["props"] as JsonObject ?? [], Cpu: c))
            .Select(c => new CpuSlot(c.Cpu["type"]?.GetValue<string>() ?? "", c.Props, c.Cpu["qom-path"]?.GetValue<string>(),
                (((Id(c.Props, "socket-id") * 256) + Id(c.Props, "die-id")) * 256 + Id(c.Props, "core-id")) * 256 + Id(c.Props, "thread-id")))
            .OrderBy(c => c.Order)
            .ToList();
    }

    /// <summary>Asks the guest to give a vCPU back (ACPI eject; the guest takes it offline first) and waits until it has.</summary>
    private async Task UnplugCpuAsync(CpuSlot slot, TimeSpan timeout, CancellationToken cancellationToken)
    {
        await RunAsync("device_del", new JsonObject { ["id"] = slot.QomPath }, cancellationToken);
        var watch = Stopwatch.StartNew();
        while ((await CpuSlotsAsync(cancellationToken)).Any(s => s.Order == slot.Order && s.QomPath is not null))
        {
            if (watch.Elapsed > timeout)
            {
                throw new DeviceHotplugException($"the guest has not released the vCPU at {slot.QomPath} within {timeout.TotalSeconds} s");
            }

            await Task.Delay(100, cancellationToken);
        }
    }

    /// <summary>
    /// A guest without udev leaves a plugged vCPU offline until told: the QEMU guest agent's <c>guest-set-vcpus</c> brings
    /// it online, once the guest has seen it (<c>guest-get-vcpus</c> lists it). Without an agent the guest is left to
    /// do it itself (a distribution's udev rule does).
    /// </summary>
    private async Task OnlineGuestCpusAsync(string vmUuid, int count, TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (qga is null)
        {
            return;
        }

        var watch = Stopwatch.StartNew();
        try
        {
            while (true)
            {
                var vcpus = await qga.AskAsync((a, ct) => a.ExecuteAsync("guest-get-vcpus", null, QgaQueries.Timeout, ct), cancellationToken) as JsonArray ?? [];
                var offline = vcpus.OfType<JsonObject>().Where(v => v["online"]?.GetValue<bool>() == false).ToList();
                if (offline.Count > 0)
                {
                    var online = new JsonArray([.. offline.Select(v => (JsonNode)new JsonObject { ["logical-id"] = v["logical-id"]!.GetValue<long>(), ["online"] = true })]);
                    await qga.AskAsync((a, ct) => a.ExecuteAsync("guest-set-vcpus", new JsonObject { ["vcpus"] = online }, QgaQueries.Timeout, ct), cancellationToken);
                }
                else if (vcpus.Count >= count)
                {
                    return;
                }

                if (watch.Elapsed > timeout)
                {
                    logger.LogWarning("VM {Vm}: the guest shows {Seen} of {Count} vCPUs online after {Seconds} s", vmUuid, vcpus.Count - offline.Count, count, timeout.TotalSeconds);
                    return;
                }

                await Task.Delay(200, cancellationToken);
            }
        }
        catch (Exception ex) when (ex is QgaException or TimeoutException or IOException or SocketException or ObjectDisposedException)
        {
            // The vCPUs are the guest's all the same; a guest that onlines CPUs itself needs no agent.
            logger.LogInformation("VM {Vm}: the QEMU guest agent did not bring the new vCPUs online ({Reason})", vmUuid, ex.Message);
        }
    }

    /// <summary>Sets the balloon's target: the guest gives memory back (inflates) or takes it again (deflates) to reach it.</summary>
    public async Task SetMemoryTargetAsync(long bytes, CancellationToken cancellationToken)
    {
        RequireBalloon();
        if (bytes < 1L << 20)
        {
            throw new DeviceHotplugException($"a memory target of {bytes} bytes leaves the guest nothing to run in");
        }

        await RunAsync("balloon", new JsonObject { ["value"] = bytes }, cancellationToken);
    }

    /// <summary>The memory the guest has now (its RAM less what its balloon holds); null for a VM without a balloon.</summary>
    public async Task<long?> QueryMemoryActualAsync(CancellationToken cancellationToken)
    {
        if (!devices.Spec.Balloon)
        {
            return null;
        }

        var reply = await qmp.ExecuteAsync("query-balloon", null, cancellationToken);
        return reply?["actual"]?.GetValue<long>();
    }

    private void RequireBalloon()
    {
        if (!devices.Spec.Balloon)
        {
            throw new DeviceHotplugException("this VM was started without a memory balloon; its memory changes at its next start");
        }
    }

    /// <summary>
    /// Grows a disk while the guest uses it: its image and the size the guest's driver reports (virtio-blk tells the
    /// guest at once). The size is rounded up to whole 512-byte sectors; a smaller size than now is refused, as it would
    /// cut off the guest's data. Returns the disk's size now.
    /// </summary>
    public async Task<long> ResizeDiskAsync(int diskIndex, long bytes, CancellationToken cancellationToken)
    {
        var disk = devices.Spec.Disks.FirstOrDefault(d => d.Index == diskIndex)
                   ?? throw new DeviceHotplugException($"the VM has no disk {diskIndex}");
        if (disk.IsCdrom || disk.ReadOnly)
        {
            throw new DeviceHotplugException($"disk {diskIndex} is read-only; it is not resized");
        }

        var size = (bytes + SectorBytes - 1) / SectorBytes * SectorBytes;
        var current = await DiskSizeAsync(diskIndex, cancellationToken);
        if (size < current)
        {
            throw new DeviceHotplugException($"disk {diskIndex} has {current} bytes; it does not shrink to {size}");
        }

        // A disk from the command line is named by its drive; one plugged later (blockdev-add) by its node.
        var id = QemuCommandLine.DriveId(diskIndex);
        var key = await IsCommandLineDriveAsync(id, cancellationToken) ? "device" : "node-name";
        await RunAsync("block_resize", new JsonObject { [key] = id, ["size"] = size }, cancellationToken);
        return await DiskSizeAsync(diskIndex, cancellationToken);
    }

    private async Task<bool> IsCommandLineDriveAsync(string id, CancellationToken cancellationToken) =>
        (await qmp.ExecuteAsync("query-block", null, cancellationToken) as JsonArray ?? []).OfType<JsonObject>()
        .Any(b => b["device"]?.GetValue<string>() == id);

    private async Task<long> DiskSizeAsync(int diskIndex, CancellationToken cancellationToken)
    {
        var id = QemuCommandLine.DriveId(diskIndex);
        var block = (await qmp.ExecuteAsync("query-block", null, cancellationToken) as JsonArray ?? []).OfType<JsonObject>()
            .FirstOrDefault(b => b["device"]?.GetValue<string>() == id || b["inserted"]?["node-name"]?.GetValue<string>() == id);
        return block?["inserted"]?["image"]?["virtual-size"]?.GetValue<long>()
               ?? throw new DeviceHotplugException($"QEMU does not report disk {diskIndex}'s size");
    }

    /// <summary>A QMP command whose refusal the caller reports as this resize's failure.</summary>
    private async Task RunAsync(string command, JsonObject arguments, CancellationToken cancellationToken)
    {
        try
        {
            await qmp.ExecuteAsync(command, arguments, cancellationToken);
        }
        catch (QmpException ex)
        {
            throw new DeviceHotplugException($"QEMU refused {command}: {ex.Description}", ex);
        }
    }
}
