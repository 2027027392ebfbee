using System.Net;
using System.Net.Sockets;
using Corral.Agent.Hosting;
using Corral.Api.Methods;
using Corral.Api.Pool;
using Corral.Api.Sessions;
using Corral.HighAvailability;
using Corral.Model;
using Corral.PoolDatabase;
using Microsoft.Extensions.Options;

namespace Corral.Agent.HighAvailability;

/// <summary>
/// Runs <see cref="MasterFence"/> every <see cref="HaTimings.ProbeInterval"/> on a host that is not the master, over
/// <see cref="PoolMasterFenceWorld"/>: a master dead on both channels is powered off by its fence agent and its lease
/// revoked, so that its VMs need not wait for that lease to expire. The HA simulation drives the same class.
/// </summary>
public sealed class MasterFenceWatch(PoolMasterFenceWorld world, TimeProvider clock, IOptions<HaOptions> options, ILogger<MasterFenceWatch> logger)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var fence = new MasterFence(options.Value.Timings, clock, logger);
        using var timer = new PeriodicTimer(options.Value.Timings.ProbeInterval, clock);
        do
        {
            try
            {
                await fence.RunOnceAsync(world, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                logger.LogDebug(ex, "Master watch round failed; retrying");
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken).AsTask().ContinueWith(t => t.IsCompletedSuccessfully && t.Result, TaskScheduler.Default));
    }
}

/// <summary>
/// <see cref="IMasterFenceWorld"/> over this agent: HA's state and the heartbeats as <see cref="StorageHeartbeat"/>
/// reads them, the master as the election names it, a TCP connection to the port the hosts serve the XenAPI on (<see cref="ApiOptions.PeerPort"/>) as the probe, the
/// master's fence agent, and its recovery record and lease in the pool database.
/// </summary>
public sealed class PoolMasterFenceWorld(
    IPoolDatabase database,
    HostIdentity identity,
    HostLiveness liveness,
    MasterState masterState,
    StorageHeartbeat heartbeats,
    FenceAgents fenceAgents,
    IOptions<HaOptions> options,
    IOptions<ApiOptions> api,
    TimeProvider clock) : IMasterFenceWorld
{
    private static readonly TimeSpan HostRecordFresh = TimeSpan.FromSeconds(5);

    // The master's host record, read again at most every few seconds (its fence agent and address change rarely).
    private XenObject? _master;
    private long _masterReadAt;

    public bool HaEnabled => heartbeats.HaEnabled;

    public bool LeaseSafe => liveness.LeaseSafe();

    public async Task<HaHost?> MasterAsync(CancellationToken cancellationToken)
    {
        if (masterState.MasterRef is not { } masterRef || masterRef == identity.Ref)
        {
            return null;
        }

        if (_master?.Ref != masterRef || clock.GetElapsedTime(_masterReadAt) > HostRecordFresh)
        {
            _master = await database.TryGetAsync(XenClasses.Host, masterRef, cancellationToken);
            _masterReadAt = clock.GetTimestamp();
        }

        return _master is { } host
            ? new HaHost(host.Ref, host.Uuid, host.Get(XenApi.Host.NameLabel), Live: true, host.Get(XenApi.Host.Enabled), FenceAgents.Configured(host))
            : null;
    }

    public async Task<bool> ProbeAsync(HaHost host, CancellationToken cancellationToken)
    {
        if (_master?.Ref != host.Ref || !IPAddress.TryParse(_master.Get(XenApi.Host.Address), out var address))
        {
            // No address to probe: no evidence of silence either.
            return true;
        }

        var port = api.Value.PeerPort;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.Value.Timings.ProbeInterval);
        using var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(address, port, timeout.Token);
            return true;
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.ConnectionRefused)
        {
            // A running kernel answered: the host is up, whatever its agent is doing.
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    public long? Heartbeat(HaHost host) => heartbeats.Counter(host.Uuid);

    public TimeSpan? HeartbeatStillFor(HaHost host) => heartbeats.StillFor(host.Uuid);

    public async Task<bool> StillMasterAsync(HaHost host, CancellationToken cancellationToken) =>
        await database.Leases.GetValueAsync(PoolMethods.MasterKey, cancellationToken) == host.Ref;

    public Task<bool> PowerFenceAsync(HaHost host, CancellationToken cancellationToken) =>
        _master?.Ref == host.Ref ? fenceAgents.FenceAsync(_master, cancellationToken) : Task.FromResult(false);

    public async Task DeclarePowerFencedAsync(HaHost host, long? heartbeat, CancellationToken cancellationToken)
    {
        var key = PoolRecoveryWorld.KeyOf(host.Ref);
        var (json, revision) = await database.Leases.GetWithRevisionAsync(key, cancellationToken);
        var existing = json is null ? null : RecoveryRecord.FromJson(json);
        if (RecoveryRecord.PowerFencedBySurvivor(existing, host.Ref, clock.GetUtcNow().UtcDateTime, heartbeat) is { } record)
        {
            var tx = new PoolTransaction();
            tx.Require(key, revision);
            tx.PutKey(key, record.ToJson());

            // A master that wrote the record meanwhile has it in hand; the host is off either way.
            await database.TryCommitAsync(tx, cancellationToken);
        }

        await database.Leases.RevokeHolderAsync(PoolMethods.MasterKey, host.Ref, cancellationToken);
    }
}
