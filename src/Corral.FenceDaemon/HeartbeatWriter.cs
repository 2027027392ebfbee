using Corral.HighAvailability;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Corral.FenceDaemon;

/// <summary>
/// Writes this host's storage heartbeat every <see cref="HaTimings.HeartbeatInterval"/> while the fence allows it
/// (<see cref="FenceRound.MayBeat"/>), on a loop of its own: a write stalled on the storage never holds up the fence
/// loop, which then sees the heartbeat no longer landing. Each write counts from when it began.
/// </summary>
public sealed class HeartbeatWriter(FenceState state, TimeProvider clock, ILogger<HeartbeatWriter> logger) : BackgroundService
{
    private (string Directory, string HostUuid)? _target;
    private long _counter;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(state.Timings.HeartbeatInterval, clock);
        do
        {
            timer.Period = state.Timings.HeartbeatInterval;
            if (state.BeatTarget is { } target)
            {
                Beat(target);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken).AsTask().ContinueWith(t => t.IsCompletedSuccessfully && t.Result, TaskScheduler.Default));
    }

    private void Beat((string Directory, string HostUuid) target)
    {
        if (_target != target)
        {
            // Carry on from what is there, so that a restarted daemon's first write moves the counter too.
            _target = target;
            _counter = HeartbeatFile.Read(target.Directory, target.HostUuid) ?? 0;
        }

        var began = state.Now;
        try
        {
            HeartbeatFile.Write(target.Directory, target.HostUuid, ++_counter, clock.GetUtcNow().UtcDateTime);
            state.BeatLanded(began);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            logger.LogWarning(ex, "Could not write the storage heartbeat in {Directory}", target.Directory);
        }
    }
}
