using System.Globalization;
using System.Text.Json;
using Corral.Agent.Hosting;
using Corral.Hypervisor;
using Corral.Leases.Sanlock;
using Corral.Model;
using Corral.PoolDatabase;
using Corral.Statefile;
using Corral.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Corral.Agent.Storage;

/// <summary>
/// The VM leases of an SR a host reaches only in userspace (NFS, iSCSI: the drivers that are <see cref="ISharedVolumes"/>).
/// sanlock needs a file; the SR's lease volume (<see cref="SharedVolume.VmLeases"/>, 256 MiB) is exported on each host
/// as <c>&lt;Corral:Sanlock:VolumeDirectory&gt;/&lt;sr uuid&gt;.leases</c> by qemu-storage-daemon (<see cref="VolumeExports"/>).
/// Its first MiB is the SR's lockspace; each VM whose lease the SR holds has a MiB of its own after it, its slot
/// recorded in the SR's <c>sm_config</c> (<see cref="SlotsKey"/>: VM uuid to slot), taken when the VM first starts and
/// given to another VM only once the VM is gone from the pool. A lease area is written only when it holds no lease yet,
/// or the lease of a VM that is gone and that nobody holds.
/// </summary>
public sealed class LeaseVolumes(
    IPoolDatabase database, SrDrivers drivers, VolumeExports exports, SanlockClient sanlock, HostIdentity identity, HostLiveness liveness,
    IOptions<SanlockOptions> options, ILogger<LeaseVolumes> logger)
{
    /// <summary>The SR's <c>sm_config</c> key holding its VMs' lease slots (JSON: VM uuid to slot number).</summary>
    public const string SlotsKey = "corral-vm-lease-slots";

    /// <summary>How many VMs' leases one SR's volume holds (its first MiB is the lockspace).</summary>
    public static readonly int Capacity = (int)(SharedVolume.VmLeases.Size / SanlockClient.AreaSize) - 1;

    private static readonly EventId LockspaceWritten = new(2405, "LeaseLockspaceWritten");
    private static readonly EventId SlotTaken = new(2406, "VmLeaseSlotTaken");

    /// <summary>Whether the SR keeps its VMs' leases in a lease volume.</summary>
    public bool Keeps(XenObject sr) => sr.Get(XenApi.SR.Shared) && drivers.Find(sr.Get(XenApi.SR.Type)) is ISharedVolumes;

    /// <summary>
    /// The SR's lease volume exported here (made on the SR if missing; exported again if its export died or is stuck):
    /// its path. Null when the SR is not plugged here. The lockspace in it is written before a first join
    /// (<see cref="EnsureLockspaceAsync"/>).
    /// </summary>
    public async Task<string?> ExportAsync(XenObject sr, CancellationToken cancellationToken)
    {
        if (drivers.Find(sr.Get(XenApi.SR.Type)) is not ISharedVolumes volumes
            || await StorageOperationHandler.LocalDirectoryAsync(database, sr, identity.Ref, cancellationToken) is not { } location)
        {
            return null;
        }

        var (blockdev, password) = await volumes.VolumeAsync(location, sr.Uuid, SharedVolume.VmLeases, "leases", cancellationToken);
        var path = ExportPath(sr.Uuid);
        await exports.EnsureAsync(new VolumeExport(path, "leases", blockdev, password, SharedVolume.VmLeases.Size), cancellationToken);
        return path;
    }

    /// <summary>Where the SR's lease volume is exported on this host.</summary>
    public string ExportPath(string srUuid) => Path.Combine(options.Value.VolumeDirectory, srUuid + ExportSuffix);

    private const string ExportSuffix = ".leases";

    /// <summary>The SRs whose lease volume has an export on this host (its daemon's pid kept beside it), running or not.</summary>
    public IReadOnlyList<string> Exported() =>
        Directory.Exists(options.Value.VolumeDirectory)
            ? Directory.EnumerateFiles(options.Value.VolumeDirectory, "*" + ExportSuffix + ".pid")
                .Select(pid => Path.GetFileName(pid)[..^(ExportSuffix.Length + ".pid".Length)])
                .Where(uuid => Guid.TryParse(uuid, out _))
                .ToList()
            : [];

    /// <summary>Whether the SR's lease volume has an export on this host (its daemon's pid kept beside it), running or not.</summary>
    public bool IsExported(string srUuid) => File.Exists(ExportPath(srUuid) + ".pid");

    /// <summary>Stops the SR's lease volume export on this host, if there is one (its lockspace left first).</summary>
    public Task StopExportAsync(string srUuid, CancellationToken cancellationToken) => exports.StopAsync(ExportPath(srUuid), cancellationToken);

    /// <summary>
    /// Writes the SR's lockspace unless it is there. Only where none was ever written (sanlock reads no leader): over a
    /// lockspace in use it would erase the hosts' delta leases. Hosts joining first at once take turns through a key on
    /// their liveness leases, so one writes it and the others find it.
    /// </summary>
    public async Task EnsureLockspaceAsync(string srUuid, string path, CancellationToken cancellationToken)
    {
        var key = $"{PoolKeys.Root}vm-leases/writing/{srUuid}";
        while (true)
        {
            var code = await sanlock.ReadLockspaceLeaderAsync(srUuid, path, cancellationToken);
            if (code == 0)
            {
                return;
            }

            if (code != SanlockClient.NoLeader)
            {
                throw new IOException($"the lease volume of SR {srUuid} holds no readable lockspace (sanlock read_leader: {code})");
            }

            if (liveness.Lease is { } lease && await database.Leases.TryClaimAsync(lease, key, identity.Ref, cancellationToken))
            {
                try
                {
                    if (await sanlock.ReadLockspaceLeaderAsync(srUuid, path, cancellationToken) == SanlockClient.NoLeader)
                    {
                        var written = await sanlock.InitLockspaceAsync(srUuid, path, cancellationToken);
                        if (!written.Succeeded)
                        {
                            throw new IOException($"sanlock could not write the lockspace of SR {srUuid}: {written.Output}");
                        }

                        logger.LogInformation(LockspaceWritten, "Wrote the VM lease lockspace of SR {Sr} in its lease volume", srUuid);
                    }
                }
                finally
                {
                    await database.Leases.DeleteIfValueAsync(key, identity.Ref, CancellationToken.None);
                }

                return;
            }

            await Task.Delay(500, cancellationToken);
        }
    }

    /// <summary>
    /// The VM's lease in the SR's volume at <paramref name="path"/>: its slot taken if it has none, and, unless the lease
    /// is a migration's destination's (<paramref name="incoming"/>: the source holds it already), its area written if it
    /// holds no lease of the VM.
    /// </summary>
    public async Task<VmLease> LeaseAsync(XenObject sr, string vmUuid, string path, VmLeaseMode mode, bool incoming, CancellationToken cancellationToken)
    {
        var slot = await SlotAsync(sr, vmUuid, cancellationToken);
        var lease = new VmLease(sr.Uuid, vmUuid, path, mode, (slot + 1) * SanlockClient.AreaSize);
        var (code, there) = await sanlock.ReadResourceLeaderAsync(lease, cancellationToken);
        if (code == 0)
        {
            return lease;
        }

        if (incoming || (code != SanlockClient.NoLeader && there is null))
        {
            throw new XenApiException(ErrorCodes.SrBackendFailure, "LEASES", "",
                $"the lease of VM {vmUuid} in slot {slot} of SR {sr.Uuid}'s lease volume cannot be read (sanlock read_leader: {code})");
        }

        if (there is not null && (await sanlock.ReadHoldersAsync(lease with { Resource = there }, cancellationToken)).All.Any())
        {
            throw new XenApiException(ErrorCodes.SrBackendFailure, "LEASES", "",
                $"slot {slot} of SR {sr.Uuid}'s lease volume holds the lease of {there}, which a host holds: VM {vmUuid} cannot take it");
        }

        var written = await sanlock.InitResourceAsync(lease, cancellationToken);
        if (!written.Succeeded)
        {
            throw new XenApiException(ErrorCodes.SrBackendFailure, "LEASES", "", $"could not write VM {vmUuid}'s lease: {written.Output}");
        }

        return lease;
    }

    /// <summary>The VM's slot in the SR's lease volume, taken (the smallest free one) if it has none.</summary>
    private async Task<int> SlotAsync(XenObject sr, string vmUuid, CancellationToken cancellationToken)
    {
        if (Slots(sr).TryGetValue(vmUuid, out var known))
        {
            return known;
        }

        // Slots of VMs gone from the pool are given again; only those seen before the VMs were listed (a slot taken
        // for a VM made since is not that VM's loss).
        var seen = Slots(await database.GetAsync(XenClasses.SR, sr.Ref, cancellationToken));
        var vms = (await database.GetAllAsync(XenClasses.VM, cancellationToken)).Select(v => v.Uuid).ToHashSet(StringComparer.Ordinal);
        var slot = -1;
        await database.UpdateAsync([(XenClasses.SR, sr.Ref)], (objs, tx) =>
        {
            var slots = Slots(objs[0]);
            if (slots.TryGetValue(vmUuid, out slot))
            {
                return;
            }

            foreach (var gone in slots.Keys.Where(v => seen.ContainsKey(v) && !vms.Contains(v)).ToList())
            {
                slots.Remove(gone);
            }

            var used = slots.Values.ToHashSet();
            slot = Enumerable.Range(0, Capacity).FirstOrDefault(i => !used.Contains(i), -1);
            if (slot < 0)
            {
                return;
            }

            slots[vmUuid] = slot;
            var config = new Dictionary<string, string>(objs[0].Get(XenApi.SR.SmConfig), StringComparer.Ordinal)
            {
                [SlotsKey] = JsonSerializer.Serialize(slots.OrderBy(kv => kv.Value).ToDictionary(kv => kv.Key, kv => kv.Value)),
            };
            var updated = objs[0].Clone();
            updated.Set(XenApi.SR.SmConfig, config);
            tx.Update(updated);
        }, cancellationToken);
        if (slot < 0)
        {
            throw new XenApiException(ErrorCodes.SrBackendFailure, "LEASES", "",
                $"SR {sr.Uuid}'s lease volume has no free slot: it holds the leases of {Capacity.ToString(CultureInfo.InvariantCulture)} VMs");
        }

        logger.LogInformation(SlotTaken, "VM {Vm} has slot {Slot} in the lease volume of SR {Sr}", vmUuid, slot, sr.Uuid);
        return slot;
    }

    private static Dictionary<string, int> Slots(XenObject sr) =>
        sr.Get(XenApi.SR.SmConfig).GetValueOrDefault(SlotsKey) is { Length: > 0 } json
            ? JsonSerializer.Deserialize<Dictionary<string, int>>(json) ?? []
            : [];
}
