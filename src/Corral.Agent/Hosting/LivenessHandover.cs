using Corral.Hypervisor;
using Corral.PoolDatabase;

namespace Corral.Agent.Hosting;

/// <summary>
/// Passes the liveness lease from one generation of the agent to the next on <c>host.restart_agent</c>, in the same
/// process: the old generation offers its lease instead of revoking it, the new one resumes it by id within its TTL, so
/// the host's liveness key, its VM ownership claims and (on the master) the master key never vanish, and nobody
/// restarts or re-elects anything.
/// </summary>
/// <remarks>
/// Between the old generation's self-fence stopping and the new one's starting (the old generation is gone meanwhile:
/// its QMP connections must be released before the new one adopts the VMs), nothing would kill the VMs if the lease
/// could no longer be counted on; with HA on the master would then restart them elsewhere while they still run here.
/// So a guard takes the self-fence's place meanwhile: every 100 ms, once the lease in hand (the offered one, then the
/// resumed one) is past its safe time, it SIGKILLs the VMs the old generation ran, exactly as the self-fence does.
/// </remarks>
public sealed class LivenessHandover(ILogger logger) : IDisposable
{
    private static readonly TimeSpan GuardPeriod = TimeSpan.FromMilliseconds(100);

    private readonly Lock _lock = new();
    private ILease? _lease;
    private bool _offered;
    private bool _leaseTaken;
    private CancellationTokenSource? _guard;

    /// <summary>The old generation, stopping: hands its lease over instead of revoking it; guards the VMs if HA is on.</summary>
    public void Offer(ILease lease, bool haEnabled, IReadOnlyCollection<IVmProcess> processes)
    {
        lock (_lock)
        {
            _lease = lease;
            _offered = true;
            _leaseTaken = false;
            StopGuard();
            if (haEnabled && processes.Count > 0)
            {
                _guard = new CancellationTokenSource();
                _ = GuardAsync([.. processes], _guard.Token);
            }
        }

        logger.LogInformation("Handing liveness lease {Lease:x} to the next generation ({Count} VM(s) running, HA {Ha})",
            lease.Id, processes.Count, haEnabled ? "on" : "off");
    }

    /// <summary>The new generation: the lease to resume, once; null when none was offered.</summary>
    public long? TakeLeaseId()
    {
        lock (_lock)
        {
            if (!_offered || _leaseTaken || _lease is null)
            {
                return null;
            }

            _leaseTaken = true;
            return _lease.Id;
        }
    }

    /// <summary>The new generation resumed the lease: the guard now watches that handle's safe time.</summary>
    public void Adopt(ILease lease)
    {
        lock (_lock)
        {
            _lease = lease;
        }
    }

    /// <summary>The new generation is registered and its own self-fence watches: the guard stands down.</summary>
    public void Complete()
    {
        lock (_lock)
        {
            if (!_offered)
            {
                return;
            }

            StopGuard();
            _offered = false;
            _lease = null;
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            StopGuard();
        }
    }

    private void StopGuard()
    {
        _guard?.Cancel();
        _guard?.Dispose();
        _guard = null;
    }

    private async Task GuardAsync(IReadOnlyList<IVmProcess> processes, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(GuardPeriod);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                ILease? lease;
                lock (_lock)
                {
                    lease = _lease;
                }

                if (lease is not null && !lease.Lost.IsCancellationRequested && MonotonicTime.Now < lease.SafeUntil)
                {
                    continue;
                }

                logger.LogCritical("Self-fencing between agent generations: the liveness lease cannot be counted on; killing {Count} VM(s)", processes.Count);
                foreach (var process in processes)
                {
                    try
                    {
                        process.KillImmediately();
                    }
                    catch (Exception ex)
                    {
                        logger.LogError(ex, "Could not kill QEMU {Pid} of VM {Vm}", process.ProcessId, process.VmUuid);
                    }
                }

                return;
            }
        }
        catch (OperationCanceledException)
        {
            // Taken over: the new generation's self-fence watches.
        }
    }
}
