using Corral.HighAvailability;

namespace Corral.Agent.HighAvailability;

/// <summary>
/// What the log says of HA's statefile while this host cannot reach it: the first failure of an episode and a change of
/// reason at once, then a reminder every <see cref="RepeatEvery"/> (the check runs every few seconds, and an outage
/// of minutes said each time buries everything else), and the end of the episode with how long it lasted.
/// </summary>
public sealed class UnreachableEpisode(ILogger logger, TimeProvider clock)
{
    public static readonly TimeSpan RepeatEvery = TimeSpan.FromMinutes(1);

    private long _since;
    private long _said;
    private string? _reason;

    public void Failed(string srUuid, Exception error)
    {
        var now = clock.GetTimestamp();
        var reason = error.Message;
        var first = _since == 0;
        if (first)
        {
            _since = now;
        }

        if (!first && reason == _reason && clock.GetElapsedTime(_said, now) < RepeatEvery)
        {
            logger.LogDebug(error, "HA's statefile on SR {Sr} still cannot be reached from this host", srUuid);
            return;
        }

        _said = now;
        _reason = reason;
        var seconds = clock.GetElapsedTime(_since, now).TotalSeconds;
        if (error is IOException)
        {
            logger.LogWarning(HaEvents.StatefileUnreachable, "HA's statefile on SR {Sr} cannot be reached from this host{For}: {Reason}",
                srUuid, first ? "" : $" (for {seconds:F0} s)", reason);
        }
        else
        {
            logger.LogWarning(HaEvents.StatefileUnreachable, error, "HA's statefile on SR {Sr} cannot be reached from this host{For}",
                srUuid, first ? "" : $" (for {seconds:F0} s)");
        }
    }

    public void Succeeded(string srUuid)
    {
        if (_since == 0)
        {
            return;
        }

        logger.LogInformation(HaEvents.StatefileReachable, "HA's statefile on SR {Sr} is reached from this host again, after {Seconds:F0} s",
            srUuid, clock.GetElapsedTime(_since).TotalSeconds);
        _since = 0;
        _reason = null;
    }
}
