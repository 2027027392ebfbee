namespace Corral.Agent.Membership;

/// <summary>
/// Lets a running agent ask to be started again: after joining, leaving or recovering a pool its pool database is a
/// different one, so every service starts afresh on it (Program runs the agent in generations).
/// </summary>
public sealed class AgentLifecycle
{
    private IHostApplicationLifetime? _current;
    private volatile bool _restartRequested;

    public void Attach(IHostApplicationLifetime lifetime) => _current = lifetime;

    /// <summary>Stops this generation shortly (so the current API answer gets out first) and starts the next.</summary>
    public void RequestRestart()
    {
        _restartRequested = true;
        var lifetime = _current;
        _ = Task.Delay(TimeSpan.FromMilliseconds(300)).ContinueWith(_ => lifetime?.StopApplication(), TaskScheduler.Default);
    }

    /// <summary>True once if a restart was asked for since the last call.</summary>
    public bool TakeRestartRequest()
    {
        var requested = _restartRequested;
        _restartRequested = false;
        return requested;
    }
}
