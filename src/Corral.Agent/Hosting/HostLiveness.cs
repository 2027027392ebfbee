using Corral.Agent.HighAvailability;
using Corral.Agent.Membership;
using Corral.Api.Methods;
using Corral.Api.Sessions;
using Corral.HighAvailability;
using Corral.Hypervisor;
using Corral.Model;
using Corral.Platform;
using Corral.PoolDatabase;
using Microsoft.Extensions.Options;

namespace Corral.Agent.Hosting;

/// <summary>
/// Registers this host in the pool (creating the pool if there is none yet), and keeps its liveness key alive on an
/// etcd lease: <c>host_metrics.live</c> is true exactly while that key exists.
/// </summary>
public sealed class HostLiveness(
    IPoolDatabase database,
    HostIdentity identity,
    SessionService sessions,
    HostRegistration registration,
    AgentLifecycle lifecycle,
    IHypervisor hypervisor,
    Vms.MigrationTlsIdentity migrationIdentity,
    Storage.SharedSrPlugs sharedSrs,
    IOptions<AgentOptions> options,
    IOptions<HaOptions> ha,
    ILogger<HostLiveness> logger) : BackgroundService
{
    /// <summary>Whether the host is live in the pool now: its liveness key exists (its lease has not expired).</summary>
    public static async Task<bool> IsLiveAsync(IPoolDatabase database, XenObject host, CancellationToken cancellationToken) =>
        await database.Leases.GetValueAsync(PoolKeys.LiveKey(host.Get(XenApi.Host.Metrics)), cancellationToken) is not null;

    /// <summary>When this generation of the agent started: <c>other_config:agent_start_time</c>.</summary>
    private readonly DateTime _startedUtc = DateTime.UtcNow;

    private readonly TaskCompletionSource _registered = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The current liveness lease; VM ownership claims ride on it. Null while there is none.</summary>
    public ILease? Lease { get; private set; }

    public Task Registered => _registered.Task;

    // What this host's running VMs were given, by the pool database as last read.
    private long _vmBytes;

    /// <summary>Whether this host holds a lease it may count on now, by its monotonic clock (<see cref="SelfFencePolicy.LeaseSafe"/>).</summary>
    public bool LeaseSafe() => Lease is { } lease && SelfFencePolicy.LeaseSafe(lease.Lost.IsCancellationRequested, lease.SafeUntil, MonotonicTime.Now);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // After host.restart_agent the previous generation's lease is resumed first, before its safe time runs out.
        var handedOver = await ResumeHandedOverLeaseAsync(stoppingToken);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await RegisterAsync(stoppingToken);
                break;
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                logger.LogWarning(ex, "Could not register with the pool database yet; retrying");
                await Task.Delay(1000, stoppingToken);
            }
        }

        _ = ReportAcceleratorAsync(stoppingToken);
        while (!stoppingToken.IsCancellationRequested)
        {
            ILease? lease = null;
            try
            {
                lease = handedOver is { Lost.IsCancellationRequested: false }
                    ? handedOver
                    : await database.Leases.AcquireAsync(ha.Value.LeaseTtl, ha.Value.KeepAliveInterval, stoppingToken);
                handedOver = null;
                await database.Leases.PutAsync(lease, PoolKeys.LiveKey(identity.MetricsRef), identity.Ref, stoppingToken);
                // VMs already running here (re-adopted) keep their ownership claims on the new lease.
                foreach (var vm in await database.GetAllAsync(XenClasses.VM, stoppingToken))
                {
                    if (vm.Get(XenApi.VM.ResidentOn) == identity.Ref)
                    {
                        await database.Leases.PutAsync(lease, PoolKeys.VmOwnerKey(vm.Ref), identity.Ref, stoppingToken);
                    }
                }

                Lease = lease;
                _registered.TrySetResult();
                lifecycle.Handover.Complete();
                logger.LogInformation("Host {Name} is live in the pool (lease {Lease:x})", options.Value.HostName, lease.Id);
                while (!lease.Lost.IsCancellationRequested && !stoppingToken.IsCancellationRequested)
                {
                    await UpdateMetricsAsync(stoppingToken);
                    await Task.Delay(TimeSpan.FromSeconds(5), lease.Lost).ContinueWith(_ => { }, TaskScheduler.Default).WaitAsync(stoppingToken);
                }

                if (lease.Lost.IsCancellationRequested)
                {
                    logger.LogWarning("Liveness lease lost; registering again");
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
            }
            catch (Exception ex)
            {
                logger.LogWarning(ex, "Liveness lease failed; retrying");
                await Task.Delay(500, stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
            }
            finally
            {
                Lease = null;
                if (lease is not null && stoppingToken.IsCancellationRequested)
                {
                    await ReleaseAsync(lease);
                }
            }
        }
    }

    private async Task RegisterAsync(CancellationToken cancellationToken)
    {
        var powerCycled = PowerCycle.Pending(options.Value.StateDirectory);
        await registration.RegisterAsync(MachineFacts.Read(), _startedUtc, powerCycled, cancellationToken);
        if (powerCycled)
        {
            PowerCycle.Clear(options.Value.StateDirectory);
            logger.LogInformation("Back from a host shutdown or reboot: the host is enabled again");
        }

        await sessions.RefreshLocalCredentialsAsync(cancellationToken);
        await migrationIdentity.PublishAsync(cancellationToken);
        await sharedSrs.PlugAllAsync(cancellationToken);
    }

    /// <summary>The lease the previous generation handed over on <c>host.restart_agent</c>, resumed; null when there is none.</summary>
    private async Task<ILease?> ResumeHandedOverLeaseAsync(CancellationToken cancellationToken)
    {
        if (lifecycle.Handover.TakeLeaseId() is not { } id)
        {
            return null;
        }

        try
        {
            if (await database.Leases.ResumeAsync(id, ha.Value.KeepAliveInterval, cancellationToken) is { } lease)
            {
                lifecycle.Handover.Adopt(lease);
                logger.LogInformation("Resumed liveness lease {Lease:x} from the previous generation of the agent", id);
                return lease;
            }

            logger.LogWarning("The previous generation's liveness lease {Lease:x} expired before it could be resumed", id);
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            logger.LogWarning(ex, "Could not resume the previous generation's liveness lease {Lease:x}", id);
        }

        return null;
    }

    /// <summary>
    /// The lease at a clean stop: revoked, so that the host is gone from the pool at once rather than after the TTL;
    /// on <c>host.restart_agent</c> handed to the next generation instead.
    /// </summary>
    private async Task ReleaseAsync(ILease lease)
    {
        if (lifecycle.Requested == AgentStop.AgentRestart && lifecycle.PendingAgentRestart is { } restart)
        {
            lifecycle.Handover.Offer(lease, restart.HaEnabled(), restart.Processes());
            return;
        }

        await lease.DisposeAsync();
    }

    /// <summary>
    /// This host's memory as host_metrics reports it (and its performance data with it): the total it offers, and what
    /// is free of it once its running VMs have theirs, by the pool database as last read.
    /// </summary>
    public (long TotalBytes, long FreeBytes) Memory() => HostMemory.Read(options.Value, Volatile.Read(ref _vmBytes));

    private async Task UpdateMetricsAsync(CancellationToken cancellationToken)
    {
        // What the VMs running here were given, as placement counts it against a host.
        Volatile.Write(ref _vmBytes, (await database.GetAllAsync(XenClasses.VM, cancellationToken))
            .Where(v => v.Get(XenApi.VM.ResidentOn) == identity.Ref && v.Get(XenApi.VM.PowerState) is VmPowerState.Running or VmPowerState.Paused)
            .Sum(Placement.MemoryNeeded));
        await database.UpdateAsync([(XenClasses.HostMetrics, identity.MetricsRef)], (objs, tx) =>
        {
            var m = objs[0].Clone();
            var (total, free) = Memory();
            m.Set(XenApi.HostMetrics.MemoryTotal, total);
            m.Set(XenApi.HostMetrics.MemoryFree, free);
            m.Set(XenApi.HostMetrics.LastUpdated, DateTime.UtcNow);
            tx.Update(m);
        }, cancellationToken);
    }

    private async Task ReportAcceleratorAsync(CancellationToken cancellationToken)
    {
        try
        {
            var choice = await hypervisor.GetAcceleratorAsync(cancellationToken);
            logger.LogInformation("VMs on this host run under {Accelerator}: {Reason}", choice.Name, choice.Reason);
            await database.UpdateAsync([(XenClasses.Host, identity.Ref)], (objs, tx) =>
            {
                var h = objs[0].Clone();
                var other = h.Get(XenApi.Host.OtherConfig).ToDictionary();
                other["corral-accelerator"] = choice.Name;
                other["corral-accelerator-reason"] = choice.Reason;
                h.Set(XenApi.Host.OtherConfig, other);
                tx.Update(h);
            }, cancellationToken);
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            logger.LogError(ex, "Accelerator probe failed");
        }
    }
}
