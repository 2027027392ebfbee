using Corral.HighAvailability;
using Corral.Statefile;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Corral.FenceDaemon;

/// <summary>
/// Writes this host's storage heartbeat every <see cref="HaTimings.HeartbeatInterval"/> while the fence allows it
/// (<see cref="FenceRound.MayBeat"/>), on a loop of its own: a write stalled on the storage never holds up the fence
/// loop, which then sees the heartbeat no longer landing. Each write counts from when it began. A statefile volume (an
/// NFS or iSCSI SR's) is exported on this host first (<see cref="VolumeExports"/>), and again after a write fails,
/// should its qemu-storage-daemon have died.
/// </summary>
public sealed class HeartbeatWriter(FenceState state, VolumeExports exports, TimeProvider clock, ILogger<HeartbeatWriter> logger) : BackgroundService
{
    private BeatTarget? _target;
    private IHeartbeatStore? _store;
    private long _counter;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(state.Timings.HeartbeatInterval, clock);
        do
        {
            timer.Period = state.Timings.HeartbeatInterval;
            if (state.BeatTarget is { } target)
            {
                await BeatAsync(target, stoppingToken);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken).AsTask().ContinueWith(t => t.IsCompletedSuccessfully && t.Result, TaskScheduler.Default));
    }

    private async Task BeatAsync(BeatTarget target, CancellationToken cancellationToken)
    {
        var began = state.Now;
        try
        {
            if (_store is null || _target != target)
            {
                if (target.Volume is { } volume)
                {
                    await exports.EnsureAsync(volume, cancellationToken);
                }

                // Carry on from what is there, so that a restarted daemon's first write moves the counter too.
                _store = HeartbeatStores.For(target.Directory, target.Volume);
                _target = target;
                _counter = _store.Read(target.HostUuid) ?? 0;
            }

            _store.Write(target.HostUuid, ++_counter, clock.GetUtcNow().UtcDateTime);
            state.BeatLanded(began);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            logger.LogWarning(ex, "Could not write the storage heartbeat in {Where}", _store?.Where ?? target.Volume?.Path ?? target.Directory);
            if (target.Volume is not null)
            {
                _store = null; // the export is checked again, and made again if its daemon died
            }
        }
    }
}
