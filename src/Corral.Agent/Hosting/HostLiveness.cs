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
    IHypervisor hypervisor,
    IOptions<AgentOptions> options,
    ILogger<HostLiveness> logger) : BackgroundService
{
    private readonly TaskCompletionSource _registered = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The current liveness lease; VM ownership claims ride on it. Null while there is none.</summary>
    public ILease? Lease { get; private set; }

    public Task Registered => _registered.Task;

    // What this host's running VMs were given, by the pool database as last read.
    private long _vmBytes;

    /// <summary>Whether this host holds a lease it may count on at <paramref name="nowUtc"/> (<see cref="SelfFencePolicy.LeaseSafe"/>).</summary>
    public bool LeaseSafe(DateTime nowUtc) => Lease is { } lease && SelfFencePolicy.LeaseSafe(lease.Lost.IsCancellationRequested, lease.SafeUntilUtc, nowUtc);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await RegisterAsync(stoppingToken).ConfigureAwait(false);
                break;
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                logger.LogWarning(ex, "Could not register with the pool database yet; retrying");
                await Task.Delay(1000, stoppingToken).ConfigureAwait(false);
            }
        }

        _ = ReportAcceleratorAsync(stoppingToken);
        while (!stoppingToken.IsCancellationRequested)
        {
            ILease? lease = null;
            try
            {
                lease = await database.Leases.AcquireAsync(options.Value.LivenessTtl, stoppingToken).ConfigureAwait(false);
                await database.Leases.PutAsync(lease, PoolKeys.LiveKey(identity.MetricsRef), identity.Ref, stoppingToken).ConfigureAwait(false);
                // VMs already running here (re-adopted) keep their ownership claims on the new lease.
                foreach (var vm in await database.GetAllAsync(XenClasses.VM, stoppingToken).ConfigureAwait(false))
                {
                    if (vm.GetString("resident_on") == identity.Ref)
                    {
                        await database.Leases.PutAsync(lease, PoolKeys.VmOwnerKey(vm.Ref), identity.Ref, stoppingToken).ConfigureAwait(false);
                    }
                }

                Lease = lease;
                _registered.TrySetResult();
                logger.LogInformation("Host {Name} is live in the pool (lease {Lease:x})", options.Value.HostName, lease.Id);
                while (!lease.Lost.IsCancellationRequested && !stoppingToken.IsCancellationRequested)
                {
                    await UpdateMetricsAsync(stoppingToken).ConfigureAwait(false);
                    await Task.Delay(TimeSpan.FromSeconds(5), lease.Lost).ContinueWith(_ => { }, TaskScheduler.Default).WaitAsync(stoppingToken).ConfigureAwait(false);
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
                await Task.Delay(500, stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default).ConfigureAwait(false);
            }
            finally
            {
                Lease = null;
                if (lease is not null && stoppingToken.IsCancellationRequested)
                {
                    // A clean agent stop: the host is gone from the pool at once rather than after the TTL.
                    await lease.DisposeAsync().ConfigureAwait(false);
                }
            }
        }
    }

    private async Task RegisterAsync(CancellationToken cancellationToken)
    {
        var pools = await database.GetAllAsync(XenClasses.Pool, cancellationToken).ConfigureAwait(false);
        var tx = new PoolTransaction();
        if (pools.Count == 0)
        {
            if (string.IsNullOrEmpty(options.Value.InitialRootPassword))
            {
                throw new InvalidOperationException("No pool exists yet and no initial root password is configured (Corral:Agent:InitialRootPassword)");
            }

            logger.LogInformation("Creating pool '{Pool}' with this host as master", options.Value.PoolName);
            tx.Create(XenClasses.PoolSchema, new Dictionary<string, object?>
            {
                ["name_label"] = options.Value.PoolName,
                ["master"] = identity.Ref,
            });
            await sessions.SetPasswordAsync(SessionService.RootUser, options.Value.InitialRootPassword, cancellationToken).ConfigureAwait(false);
        }

        var host = await database.TryGetAsync(XenClasses.Host, identity.Ref, cancellationToken).ConfigureAwait(false);
        var fields = HostFields();
        if (host is null)
        {
            var total = Memory().TotalBytes;
            tx.Create(XenClasses.HostMetricsSchema, new Dictionary<string, object?>
            {
                ["memory_total"] = total,
                ["memory_free"] = total,
                ["last_updated"] = DateTime.UtcNow,
            }, identity.MetricsRef);
            fields["uuid"] = identity.Uuid;
            fields["metrics"] = identity.MetricsRef;
            fields["enabled"] = true;
            tx.Create(XenClasses.HostSchema, fields, identity.Ref);
        }
        else
        {
            var h = host.Clone();
            foreach (var (k, v) in fields)
            {
                h[k] = v;
            }

            tx.Update(h);
        }

        await database.CommitAsync(tx, cancellationToken).ConfigureAwait(false);
        await sessions.RefreshLocalCredentialsAsync(cancellationToken).ConfigureAwait(false);
        await PlugSharedSrsAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// A host in a pool sees every shared SR, as a XenServer pool member plugs the pool's NFS SRs when it joins: a
    /// PBD with the same device_config as the other hosts', attached once the directory proves usable here.
    /// </summary>
    private async Task PlugSharedSrsAsync(CancellationToken cancellationToken)
    {
        var pbds = await database.GetAllAsync(XenClasses.PBD, cancellationToken).ConfigureAwait(false);
        foreach (var sr in await database.GetAllAsync(XenClasses.SR, cancellationToken).ConfigureAwait(false))
        {
            if (!sr.GetBool("shared") || pbds.Any(p => p.GetString("SR") == sr.Ref && p.GetString("host") == identity.Ref))
            {
                continue;
            }

            var model = pbds.FirstOrDefault(p => p.GetString("SR") == sr.Ref);
            if (model is null)
            {
                continue;
            }

            var location = model.GetStringMap("device_config").GetValueOrDefault("location");
            var attached = location is not null && Directory.Exists(location);
            var tx = new PoolTransaction();
            tx.Create(XenClasses.PBDSchema, new Dictionary<string, object?>
            {
                ["host"] = identity.Ref,
                ["SR"] = sr.Ref,
                ["device_config"] = model["device_config"],
                ["currently_attached"] = attached,
            });
            await database.CommitAsync(tx, cancellationToken).ConfigureAwait(false);
            logger.LogInformation("Plugged shared SR {Sr} ({Attached})", sr.GetString("name_label"), attached ? "attached" : "directory missing here");
        }
    }

    private Dictionary<string, object?> HostFields()
    {
        var version = typeof(HostLiveness).Assembly.GetName().Version?.ToString(3) ?? "0.1.0";
        return new Dictionary<string, object?>
        {
            ["name_label"] = options.Value.HostName,
            ["hostname"] = options.Value.HostName,
            ["address"] = options.Value.Address,
            ["software_version"] = new Dictionary<string, object?>
            {
                ["product_brand"] = "Corral",
                ["product_version"] = version,
                ["platform_name"] = "Corral",
                ["platform_version"] = version,
                ["hostname"] = options.Value.HostName,
                ["linux"] = MachineInfo.KernelRelease(),
                ["xapi"] = "1.20",
            },
            ["cpu_info"] = new Dictionary<string, object?>
            {
                ["cpu_count"] = MachineInfo.CpuCount.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["socket_count"] = "1",
                ["modelname"] = MachineInfo.CpuModel(),
            },
            ["capabilities"] = new List<object?> { "hvm-3.0-x86_64" },
            ["API_version_major"] = 2L,
            ["API_version_minor"] = 21L,
            ["API_version_vendor"] = "Corral",
        };
    }

    /// <summary>
    /// This host's memory as host_metrics reports it (and its performance data with it): the total it offers, and what
    /// is free of it once its running VMs have theirs, by the pool database as last read.
    /// </summary>
    public (long TotalBytes, long FreeBytes) Memory() => HostMemory.Read(options.Value, Volatile.Read(ref _vmBytes));

    private async Task UpdateMetricsAsync(CancellationToken cancellationToken)
    {
        // What the VMs running here were given, as placement counts it against a host.
        Volatile.Write(ref _vmBytes, (await database.GetAllAsync(XenClasses.VM, cancellationToken).ConfigureAwait(false))
            .Where(v => v.GetString("resident_on") == identity.Ref && v.GetString("power_state") is "Running" or "Paused")
            .Sum(Placement.MemoryNeeded));
        await database.UpdateAsync([(XenClasses.HostMetrics, identity.MetricsRef)], (objs, tx) =>
        {
            var m = objs[0].Clone();
            var (total, free) = Memory();
            m["memory_total"] = total;
            m["memory_free"] = free;
            m["last_updated"] = DateTime.UtcNow;
            tx.Update(m);
        }, cancellationToken).ConfigureAwait(false);
    }

    private async Task ReportAcceleratorAsync(CancellationToken cancellationToken)
    {
        try
        {
            var choice = await hypervisor.GetAcceleratorAsync(cancellationToken).ConfigureAwait(false);
            logger.LogInformation("VMs on this host run under {Accelerator}: {Reason}", choice.Name, choice.Reason);
            await database.UpdateAsync([(XenClasses.Host, identity.Ref)], (objs, tx) =>
            {
                var h = objs[0].Clone();
                var other = h.GetStringMap("other_config").ToDictionary(kv => kv.Key, kv => (object?)kv.Value);
                other["corral-accelerator"] = choice.Name;
                other["corral-accelerator-reason"] = choice.Reason;
                h["other_config"] = other;
                tx.Update(h);
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            logger.LogError(ex, "Accelerator probe failed");
        }
    }
}
