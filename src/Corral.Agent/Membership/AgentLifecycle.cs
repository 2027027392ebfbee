using Corral.Agent.Hosting;
using Corral.Hypervisor;

namespace Corral.Agent.Membership;

/// <summary>How the current generation of the agent ends.</summary>
public enum AgentStop
{
    /// <summary>For good (SIGTERM, or nothing asked).</summary>
    Exit,

    /// <summary>A new generation on a changed pool database (joining, leaving or recovering a pool).</summary>
    MembershipRestart,

    /// <summary><c>host.restart_agent</c>: a new generation that takes over the liveness lease, VMs and etcd member untouched.</summary>
    AgentRestart,

    /// <summary><c>host.shutdown</c>: the agent and the host's etcd member stop, as the machine would power off.</summary>
    PowerOff,

    /// <summary><c>host.reboot</c>: as <see cref="PowerOff"/>, then the etcd member and the agent start again.</summary>
    Reboot,
}

/// <summary>
/// Lets a running agent ask to be started again or to stop: after joining, leaving or recovering a pool its pool
/// database is a different one, so every service starts afresh on it; <c>host.restart_agent</c>, <c>host.reboot</c>
/// and <c>host.shutdown</c> end the generation too (Program runs the agent in generations). One instance lives as long as
/// the process, across generations.
/// </summary>
public sealed class AgentLifecycle(ILogger<AgentLifecycle> logger) : IDisposable
{
    /// <summary>How long the current API answer has to get out before the generation stops.</summary>
    private static readonly TimeSpan AnswerGrace = TimeSpan.FromMilliseconds(300);

    private IHostApplicationLifetime? _current;
    private AgentStop _stop;

    /// <summary>The liveness lease passed from one generation to the next on <c>host.restart_agent</c>.</summary>
    public LivenessHandover Handover { get; } = new(logger);

    /// <summary>What <c>host.restart_agent</c> said the fence guard needs: whether HA is on, and the VMs to kill if it fires.</summary>
    public (Func<bool> HaEnabled, Func<IReadOnlyCollection<IVmProcess>> Processes)? PendingAgentRestart { get; private set; }

    /// <summary>How the current generation has been asked to end (<see cref="AgentStop.Exit"/> while nothing was asked).</summary>
    public AgentStop Requested => _stop;

    public void Attach(IHostApplicationLifetime lifetime) => _current = lifetime;

    /// <summary>Stops this generation shortly (so the current API answer gets out first) and starts the next.</summary>
    public void RequestRestart() => Request(AgentStop.MembershipRestart, AnswerGrace);

    /// <summary>
    /// <c>host.restart_agent</c>: a new generation that resumes this one's liveness lease, so that the host stays live,
    /// master if it was, and owner of its VMs throughout. While HA is on and the lease is between generations, a guard
    /// kills the host's VMs if the lease can no longer be counted on, as the self-fence would.
    /// </summary>
    public void RequestAgentRestart(Func<bool> haEnabled, Func<IReadOnlyCollection<IVmProcess>> processes)
    {
        PendingAgentRestart = (haEnabled, processes);
        Request(AgentStop.AgentRestart, AnswerGrace);
    }

    /// <summary><c>host.shutdown</c> / <c>host.reboot</c>: this generation ends after <paramref name="delay"/>.</summary>
    public void RequestPowerAction(bool reboot, TimeSpan delay) => Request(reboot ? AgentStop.Reboot : AgentStop.PowerOff, delay);

    private void Request(AgentStop stop, TimeSpan delay)
    {
        _stop = stop;
        logger.LogInformation("This generation of the agent ends in {Delay} ms: {Stop}", delay.TotalMilliseconds, stop);
        var lifetime = _current;
        _ = Task.Delay(delay).ContinueWith(_ => lifetime?.StopApplication(), TaskScheduler.Default);
    }

    /// <summary>How the generation that just ended was asked to end; resets the request for the next one.</summary>
    public AgentStop TakeStop()
    {
        var stop = _stop;
        _stop = AgentStop.Exit;
        PendingAgentRestart = null;
        return stop;
    }

    public void Dispose() => Handover.Dispose();

    /// <summary>True if the generation that just ended wants a successor (for callers that only need that).</summary>
    public static bool StartsAgain(AgentStop stop) => stop is AgentStop.MembershipRestart or AgentStop.AgentRestart or AgentStop.Reboot;
}
