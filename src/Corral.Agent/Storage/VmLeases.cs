using System.Diagnostics;
using System.Collections.Concurrent;
using System.Globalization;
using Corral.Agent.Hosting;
using Corral.Api.Methods;
using Corral.Hypervisor;
using Corral.Leases.Sanlock;
using Corral.Model;
using Corral.PoolDatabase;
using Corral.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Corral.Agent.Storage;

/// <summary>
/// The leases of this host's VMs on shared storage (sanlock): each shared file SR holds a lockspace named after the SR
/// (<c>.corral-leases/&lt;sr uuid&gt;/lockspace</c>, the hosts' delta leases) and one lease per VM
/// (<c>.corral-leases/&lt;sr uuid&gt;/&lt;vm uuid&gt;</c>), in the SR of the VM's first disk; an NFS or iSCSI SR holds
/// both in its lease volume (<see cref="LeaseVolumes"/>). The SR's uuid in the path
/// keeps apart the SR records of pools that once used the same directory (hosts of a lab before they joined one pool). Each host has a sanlock host id, unique in the pool, kept in its
/// <c>other_config</c>. A VM's QEMU runs holding the lease (<see cref="SanlockLeaseLauncher"/>), so a second copy
/// cannot start on any host while the first runs, whatever the pool database says.
/// </summary>
public sealed partial class VmLeases(
    IPoolDatabase database, HostIdentity identity, HostLiveness liveness, SanlockClient sanlock, LeaseVolumes volumes, IOptions<SanlockOptions> options,
    ILogger<VmLeases> logger)
    : IStartReadiness
{
    /// <summary>The host's sanlock host id (1-2000), in <c>host.other_config</c>.</summary>
    public const string HostIdKey = "corral-sanlock-host-id";

    /// <summary>The directory of an SR that holds its lockspace and its VMs' leases.</summary>
    public const string DirectoryName = ".corral-leases";

    private const long LeaseFileBytes = 1 << 20;

    private static string LeaseDirectory(string srDirectory, string srUuid) => Path.Combine(srDirectory, DirectoryName, srUuid);

    private static readonly EventId TakenOver = new(2401, "VmLeaseTakenOver");
    private static readonly EventId Joined = new(2402, "LockspaceJoined");
    private static readonly EventId HeldExclusive = new(2403, "VmLeaseExclusive");
    private static readonly EventId Rejoining = new(2407, "LockspaceRejoining");

    /// <summary>How often a join is checked against sanlock.</summary>
    public static readonly TimeSpan RecheckPeriod = TimeSpan.FromSeconds(20);

    private readonly ConcurrentDictionary<string, Lazy<Task>> _joins = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> _published = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> _checked = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _gates = new(StringComparer.Ordinal);
    private int? _hostId;

    public bool Enabled => options.Value.Enabled;

    /// <summary>The lease a VM's QEMU takes as it starts here, the lockspace joined and the lease file made; null without one.</summary>
    /// <param name="incoming">A live migration's destination: registered now, the lease taken shared at the switchover.</param>
    public async Task<VmLease?> ForLaunchAsync(XenObject vm, bool incoming, CancellationToken cancellationToken)
    {
        if (!Enabled || await LeaseSrOfAsync(vm, cancellationToken) is not { } sr)
        {
            return null;
        }

        var mode = incoming ? VmLeaseMode.Later : VmLeaseMode.Exclusive;
        VmLease lease;
        if (volumes.Keeps(sr))
        {
            // An NFS or iSCSI SR: the lease is a slot of the SR's lease volume, exported here.
            try
            {
                if (await JoinVolumeAsync(sr, cancellationToken) is not { } path)
                {
                    return null;
                }

                lease = await volumes.LeaseAsync(sr, vm.Uuid, path, mode, incoming, cancellationToken);
            }
            catch (Exception ex) when (ex is not XenApiException && !cancellationToken.IsCancellationRequested)
            {
                throw new XenApiException(ErrorCodes.SrBackendFailure, "LEASES", "", $"the lease volume of SR {sr.Uuid} on this host: {ex.Message}");
            }
        }
        else
        {
            if (await SharedFileDirectoryAsync(sr, cancellationToken) is not { } directory)
            {
                return null;
            }

            var leases = LeaseDirectory(directory, sr.Uuid);
            await JoinFileAsync(sr.Uuid, leases, cancellationToken);
            lease = new VmLease(sr.Uuid, vm.Uuid, Path.Combine(leases, vm.Uuid), mode);
            await EnsureFileAsync(lease.Path, tmp => sanlock.InitResourceAsync(lease with { Path = tmp }, cancellationToken), cancellationToken);
        }

        if (!incoming)
        {
            await TakeOverFromFencedHostsAsync(vm, lease, cancellationToken);
        }

        return lease;
    }

    /// <summary>
    /// Joins the lockspace of every shared SR plugged here, ahead of need: sanlock takes 2-3 × its I/O timeout to join,
    /// which a VM's first start or migration here would otherwise wait for; and leaves those of SRs no longer plugged
    /// here (<see cref="ReleaseUnpluggedAsync"/>).
    /// </summary>
    public async Task JoinPluggedAsync(CancellationToken cancellationToken)
    {
        if (!Enabled)
        {
            return;
        }

        // All at once: each join takes seconds, and a host back from a reboot is not placed VMs of an SR until it joined.
        var joins = new List<Task>();
        var plugged = new HashSet<string>(StringComparer.Ordinal);
        var volumeJoins = new List<(string SrUuid, Task<string?> Path)>();
        foreach (var sr in await database.GetAllAsync(XenClasses.SR, cancellationToken))
        {
            if (await SharedFileDirectoryAsync(sr, cancellationToken) is { } directory)
            {
                plugged.Add(sr.Uuid);
                joins.Add(JoinFileAsync(sr.Uuid, LeaseDirectory(directory, sr.Uuid), cancellationToken));
            }
            else if (volumes.Keeps(sr))
            {
                // Exported again here if its export died; the lockspace joined once. No path: not plugged here.
                var join = JoinVolumeAsync(sr, cancellationToken);
                volumeJoins.Add((sr.Uuid, join));
                joins.Add(join);
            }
        }

        await Task.WhenAll(joins);
        foreach (var (srUuid, path) in volumeJoins)
        {
            if (await path is not null)
            {
                plugged.Add(srUuid);
            }
        }

        await ReleaseUnpluggedAsync(plugged, cancellationToken);
    }

    /// <summary>Makes <paramref name="process"/> hold its lease shared (a migration's two ends) or exclusive (a VM running in one place).</summary>
    /// <exception cref="XenApiException">The lease manager refused: another host holds the lease in a way that excludes this.</exception>
    public async Task HoldAsync(IVmProcess process, bool shared, CancellationToken cancellationToken)
    {
        if (process.Spec.Lease is not { } lease)
        {
            return;
        }

        var gate = GateOf(process.VmUuid);
        await gate.WaitAsync(cancellationToken);
        try
        {
            var result = await sanlock.HoldAsync(lease, process.ProcessId, shared, cancellationToken);
            if (!result.Succeeded)
            {
                throw new XenApiException(ErrorCodes.InternalError,
                    $"VM {process.VmUuid} could not hold its lease {(shared ? "shared" : "exclusive")}: {SanlockLeaseLauncher.ExplainOutput(result.Output)}");
            }
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>
    /// Gives a VM running here its lease back exclusive once a migration's other end let go (its QEMU gone): the
    /// destination after a commit, the source after an abort. A try: a holder still there is tried again next time.
    /// <paramref name="settled"/> (no migration of the VM under way) is asked under the same per-VM gate as
    /// <see cref="HoldAsync"/>, so that a migration starting meanwhile, whose source shares the lease after its record
    /// exists, is never undone by this.
    /// </summary>
    public async Task KeepExclusiveAsync(IVmProcess process, Func<CancellationToken, Task<bool>> settled, CancellationToken cancellationToken)
    {
        if (process.Spec.Lease is not { } lease || process.Exited.IsCompleted)
        {
            return;
        }

        var gate = GateOf(process.VmUuid);
        await gate.WaitAsync(cancellationToken);
        try
        {
            if (!await settled(cancellationToken))
            {
                return;
            }

            var held = await sanlock.HeldModeAsync(lease, process.ProcessId, cancellationToken);
            if (held == VmLeaseMode.Exclusive)
            {
                return;
            }

            if ((await sanlock.HoldAsync(lease, process.ProcessId, shared: false, held, cancellationToken)).Succeeded)
            {
                logger.LogInformation(HeldExclusive, "VM {Vm} holds its lease exclusive again", process.VmUuid);
            }
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>The SR's lease volume exported here and its lockspace joined: the volume's path; null when the SR is not plugged here.</summary>
    private async Task<string?> JoinVolumeAsync(XenObject sr, CancellationToken cancellationToken)
    {
        if (await volumes.ExportAsync(sr, cancellationToken) is not { } path)
        {
            return null;
        }

        await JoinAsync(sr.Uuid, path, () => volumes.EnsureLockspaceAsync(sr.Uuid, path, CancellationToken.None), cancellationToken);
        return path;
    }

    /// <summary>A shared file SR's lockspace joined (its file written by the first host to get there).</summary>
    private Task JoinFileAsync(string srUuid, string leases, CancellationToken cancellationToken)
    {
        var lockspace = Path.Combine(leases, "lockspace");
        return JoinAsync(srUuid, lockspace, async () =>
        {
            Directory.CreateDirectory(leases);
            await EnsureFileAsync(lockspace, tmp => sanlock.InitLockspaceAsync(srUuid, tmp, CancellationToken.None), CancellationToken.None);
        }, cancellationToken);
    }

    private SemaphoreSlim GateOf(string vmUuid) => _gates.GetOrAdd(vmUuid, _ => new SemaphoreSlim(1, 1));

    /// <summary>
    /// The SR that holds the VM's lease, the same seen from every host: that of its first disk on a shared SR that holds
    /// leases (a file SR's directory, or an NFS or iSCSI SR's lease volume).
    /// </summary>
    private async Task<XenObject?> LeaseSrOfAsync(XenObject vm, CancellationToken cancellationToken)
    {
        var vbds = new List<XenObject>();
        foreach (var vbdRef in vm.Get(XenApi.VM.VBDs))
        {
            if (await database.TryGetAsync(XenClasses.VBD, vbdRef, cancellationToken) is { } vbd
                && vbd.Get(XenApi.VBD.Type) == VbdType.Disk && !vbd.Get(XenApi.VBD.Empty) && !OpaqueRef.IsNull(vbd.Get(XenApi.VBD.VDI)))
            {
                vbds.Add(vbd);
            }
        }

        foreach (var vbd in vbds.OrderBy(v => v.Get(XenApi.VBD.Userdevice), StringComparer.Ordinal))
        {
            var vdi = await database.TryGetAsync(XenClasses.VDI, vbd.Get(XenApi.VBD.VDI), cancellationToken);
            var sr = vdi is null ? null : await database.TryGetAsync(XenClasses.SR, vdi.Get(XenApi.VDI.SR), cancellationToken);
            if (sr is not null && HoldsLeases(sr))
            {
                return sr;
            }
        }

        return null;
    }

    private bool HoldsLeases(XenObject sr) => IsSharedFileSr(sr) || volumes.Keeps(sr);

    private static bool IsSharedFileSr(XenObject sr) => sr.Get(XenApi.SR.Shared) && sr.Get(XenApi.SR.Type) == FileSrDriver.TypeName;

    /// <summary>Where this host reaches the SR, if it is a shared file SR plugged here (the SRs that hold leases); else null.</summary>
    private async Task<string?> SharedFileDirectoryAsync(XenObject sr, CancellationToken cancellationToken) =>
        IsSharedFileSr(sr)
            ? await StorageOperationHandler.LocalDirectoryAsync(database, sr, identity.Ref, cancellationToken)
            : null;

    /// <summary>
    /// Joins the SR's lockspace at <paramref name="lockspace"/> once, after <paramref name="prepare"/> (which makes sure
    /// the lockspace is written: the first host to get there writes it); a failed join is tried again next time. A join
    /// is checked against sanlock now and then (<see cref="RecheckPeriod"/>): a lockspace sanlock let go of (its storage
    /// failed for longer than sanlock's window, or its export was made again) is joined again.
    /// </summary>
    private async Task JoinAsync(string srUuid, string lockspace, Func<Task> prepare, CancellationToken cancellationToken)
    {
        if (_joins.TryGetValue(srUuid, out var known) && known.IsValueCreated && known.Value.IsCompletedSuccessfully)
        {
            await RecheckAsync(srUuid, lockspace, known, cancellationToken);
        }

        var join = _joins.GetOrAdd(srUuid, uuid => new Lazy<Task>(() => JoinOnceAsync(uuid, lockspace, prepare)));
        try
        {
            await join.Value.WaitAsync(cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            _joins.TryRemove(new KeyValuePair<string, Lazy<Task>>(srUuid, join));
            throw new XenApiException(ErrorCodes.SrBackendFailure, "LEASES", "", $"could not join the VM leases of SR {srUuid}: {ex.Message}");
        }

        try
        {
            await PublishJoinedAsync(cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // Said on the keeper's next pass; meanwhile placement only prefers other hosts.
            logger.LogDebug(ex, "Could not say yet that this host joined the VM leases of SR {Sr}", srUuid);
        }
    }

    /// <summary>Forgets a join sanlock no longer has, so that it is made again (at most once per <see cref="RecheckPeriod"/>).</summary>
    private async Task RecheckAsync(string srUuid, string lockspace, Lazy<Task> join, CancellationToken cancellationToken)
    {
        var now = Stopwatch.GetTimestamp();
        if (_checked.TryGetValue(srUuid, out var last) && Stopwatch.GetElapsedTime(last, now) < RecheckPeriod)
        {
            return;
        }

        _checked[srUuid] = now;
        var inquired = await sanlock.InquireLockspaceAsync(srUuid, await HostIdAsync(cancellationToken), lockspace, cancellationToken);
        if (!inquired.Succeeded && inquired.Code != SanlockClient.TimedOut && _joins.TryRemove(new KeyValuePair<string, Lazy<Task>>(srUuid, join)))
        {
            logger.LogWarning(Rejoining, "sanlock no longer has this host in the VM leases of SR {Sr} ({Output}): joining again", srUuid, inquired.Output.Trim());
        }
    }

    private async Task JoinOnceAsync(string srUuid, string lockspace, Func<Task> prepare)
    {
        // Not the caller's token: a join others wait for as well goes on when one of them gives up.
        var hostId = await HostIdAsync(CancellationToken.None);
        await prepare();
        if ((await sanlock.InquireLockspaceAsync(srUuid, hostId, lockspace, CancellationToken.None)).Succeeded)
        {
            return;
        }

        var result = await sanlock.AddLockspaceAsync(srUuid, hostId, lockspace, CancellationToken.None);
        if (!result.Succeeded && result.Code != SanlockClient.AlreadyDone)
        {
            throw new InvalidOperationException($"sanlock add_lockspace: {result.Output}");
        }

        logger.LogInformation(Joined, "Joined the VM leases of SR {Sr} as sanlock host {HostId}", srUuid, hostId);
    }

    /// <summary>This host's sanlock host id: the smallest one no other host of the pool has, chosen once, kept in its other_config.</summary>
    public async Task<int> HostIdAsync(CancellationToken cancellationToken)
    {
        if (_hostId is { } known)
        {
            return known;
        }

        var hosts = await database.GetAllAsync(XenClasses.Host, cancellationToken);
        await database.UpdateAsync(hosts.Select(h => (XenClasses.Host, h.Ref)).ToList(), (objs, tx) =>
        {
            var me = objs.Single(o => o.Ref == identity.Ref);
            if (HostIdOf(me) is not null)
            {
                return;
            }

            var used = objs.Select(HostIdOf).OfType<int>().ToHashSet();
            var chosen = Enumerable.Range(1, 2000).First(i => !used.Contains(i));
            var updated = me.Clone();
            var other = updated.Get(XenApi.Host.OtherConfig).ToDictionary(StringComparer.Ordinal);
            other[HostIdKey] = chosen.ToString(CultureInfo.InvariantCulture);
            updated.Set(XenApi.Host.OtherConfig, other);
            tx.Update(updated);
        }, cancellationToken);
        var self = await database.GetAsync(XenClasses.Host, identity.Ref, cancellationToken);
        _hostId = HostIdOf(self) ?? throw new InvalidOperationException("no sanlock host id was recorded for this host");
        return _hostId.Value;
    }

    private static int? HostIdOf(XenObject host) =>
        host.Get(XenApi.Host.OtherConfig).TryGetValue(HostIdKey, out var text) && int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var id)
            ? id
            : null;

    /// <summary>
    /// A halted VM whose lease is still held by hosts the pool knows are gone (not live: fenced by HA, or recovered by an
    /// operator) gets its lease back now: sanlock by itself frees a dead host's leases only 8 × the I/O timeout + 60 s
    /// after its last renewal, minutes after HA has proved the host fenced. The pool's proof is the one HA restarts on;
    /// a holder the pool sees live, or does not know, keeps the lease, and the start is refused.
    /// </summary>
    private async Task TakeOverFromFencedHostsAsync(XenObject vm, VmLease lease, CancellationToken cancellationToken)
    {
        var holders = (await sanlock.ReadHoldersAsync(lease, cancellationToken)).All.ToList();
        var me = await HostIdAsync(cancellationToken);
        if (holders.Count == 0 || holders.Contains(me))
        {
            return;
        }

        var hosts = await database.GetAllAsync(XenClasses.Host, cancellationToken);
        var gone = new List<string>();
        foreach (var holder in holders)
        {
            var host = hosts.FirstOrDefault(h => HostIdOf(h) == holder);
            if (host is null || await HostLiveness.IsLiveAsync(database, host, cancellationToken))
            {
                // Held by a host that runs (or may run) the VM: the start is refused by sanlock, with the reason.
                return;
            }

            gone.Add(host.Get(XenApi.Host.NameLabel));
        }

        var result = await sanlock.InitResourceAsync(lease, cancellationToken);
        if (!result.Succeeded)
        {
            throw new XenApiException(ErrorCodes.SrBackendFailure, "LEASES", "", $"could not take VM {vm.Uuid}'s lease back: {result.Output}");
        }

        logger.LogWarning(TakenOver, "VM {Vm}: its lease was still held by {Hosts}, no longer live in the pool (fenced or recovered); taken back for its start here",
            vm.Get(XenApi.VM.NameLabel), string.Join(", ", gone));
    }

    /// <summary>
    /// Writes a lease file once: made aside, then linked into place, so that hosts racing to make it never write over one
    /// already in use. Unused here when the file is already there.
    /// </summary>
    private static async Task EnsureFileAsync(string path, Func<string, Task<SanlockResult>> initialize, CancellationToken cancellationToken)
    {
        if (File.Exists(path))
        {
            return;
        }

        var aside = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.new";
        try
        {
            await using (var file = new FileStream(aside, FileMode.CreateNew, FileAccess.Write))
            {
                file.SetLength(LeaseFileBytes);
            }

            var result = await initialize(aside);
            if (!result.Succeeded)
            {
                throw new InvalidOperationException($"sanlock could not write {path}: {result.Output}");
            }

            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                File.Move(aside, path, overwrite: false);
            }
            catch (IOException) when (File.Exists(path))
            {
                // Another host made it first: theirs is the one.
            }
        }
        finally
        {
            File.Delete(aside);
        }
    }
}
