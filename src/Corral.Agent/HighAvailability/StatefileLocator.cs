using Corral.Agent.Storage;
using Corral.HighAvailability;
using Corral.Model;
using Corral.PoolDatabase;
using Corral.Statefile;
using Corral.Storage;
using Microsoft.Extensions.Options;

namespace Corral.Agent.HighAvailability;

/// <summary>Which statefile HA uses, as the pool database says (read within a heartbeat's patience).</summary>
/// <param name="Location">The SR's location on this host (<see cref="SrLocation.Of"/>).</param>
/// <param name="Slots">The hosts' uuids in slot order, comma-separated (the VDI's <c>sm_config:heartbeat-slots</c>).</param>
public sealed record StatefileSpec(string VdiUuid, string VdiLocation, string SrUuid, string SrType, string Location, string Slots);

/// <summary>The statefile as this host reaches it: a file SR's directory, or a volume exported here (<see cref="VolumeExports"/>).</summary>
public sealed record StatefileTarget(StatefileSpec Spec, string? Directory, StatefileVolume? Volume, IHeartbeatStore Store);

/// <summary>
/// Finds HA's statefile for this host and makes it reachable: on a file SR, the statefile VDI's directory in the SR; on
/// an SR reached in userspace (NFS, iSCSI: the drivers that are <see cref="ISharedVolumes"/>), the SR's statefile
/// volume, made if missing and exported under <see cref="HaOptions.StatefileMountDirectory"/>.
/// </summary>
public sealed class StatefileLocator(IPoolDatabase database, SrDrivers drivers, VolumeExports exports, IOptions<HaOptions> options)
{
    /// <summary>The statefile HA names, or null when it has none plugged on this host.</summary>
    public async Task<StatefileSpec?> ReadAsync(XenObject pool, string hostRef, CancellationToken cancellationToken)
    {
        foreach (var vdiRef in pool.Get(XenApi.Pool.HaStatefiles))
        {
            if (await database.TryGetAsync(XenClasses.VDI, vdiRef, cancellationToken) is { } vdi
                && await database.TryGetAsync(XenClasses.SR, vdi.Get(XenApi.VDI.SR), cancellationToken) is { } sr
                && await StorageOperationHandler.LocalDirectoryAsync(database, sr, hostRef, cancellationToken) is { } location)
            {
                return new StatefileSpec(vdi.Uuid, vdi.Get(XenApi.VDI.Location), sr.Uuid, sr.Get(XenApi.SR.Type), location,
                    vdi.Get(XenApi.VDI.SmConfig).GetValueOrDefault(Corral.Api.Methods.HaMethods.StatefileSlotsKey, ""));
            }
        }

        return null;
    }

    /// <summary>Makes the statefile reachable here (for a volume: made if missing, and exported, again if its export died).</summary>
    /// <exception cref="IOException">The volume could not be exported.</exception>
    public async Task<StatefileTarget> PrepareAsync(StatefileSpec spec, StatefileTarget? current, CancellationToken cancellationToken)
    {
        var target = current?.Spec == spec ? current : await TargetAsync(spec, cancellationToken);
        if (target.Volume is { } volume)
        {
            await exports.EnsureAsync(volume, cancellationToken);
        }

        return target;
    }

    private async Task<StatefileTarget> TargetAsync(StatefileSpec spec, CancellationToken cancellationToken)
    {
        if (drivers.Find(spec.SrType) is not ISharedVolumes volumes)
        {
            var directory = Path.Combine(spec.Location, spec.VdiLocation);
            return new StatefileTarget(spec, directory, null, new HeartbeatDirectory(directory));
        }

        var volume = await VolumeAsync(volumes, spec, cancellationToken);
        return new StatefileTarget(spec, null, volume, new HeartbeatSlots(volume.Path, volume.Slots));
    }

    /// <summary>Stops exporting a statefile this host no longer uses.</summary>
    public Task ReleaseAsync(StatefileTarget target, CancellationToken cancellationToken) =>
        target.Volume is { } volume ? exports.StopAsync(volume.Path, cancellationToken) : Task.CompletedTask;

    private async Task<StatefileVolume> VolumeAsync(ISharedVolumes volumes, StatefileSpec spec, CancellationToken cancellationToken)
    {
        var (blockdev, password) = await volumes.VolumeAsync(spec.Location, spec.SrUuid, SharedVolume.Statefile, "statefile", cancellationToken);
        var path = Path.Combine(options.Value.StatefileMountDirectory, spec.VdiUuid + ".statefile");
        return new StatefileVolume(path, spec.Slots.Split(',', StringSplitOptions.RemoveEmptyEntries), blockdev, password);
    }
}
