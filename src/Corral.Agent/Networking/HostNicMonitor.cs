using System.Net;
using Corral.Agent.Hosting;
using Corral.Model;
using Corral.Networking;
using Corral.PoolDatabase;
using Microsoft.Extensions.Options;

namespace Corral.Agent.Networking;

/// <summary>
/// The host's network cards in the pool database (<see cref="PifPlan"/>): scanned once the host is registered, as
/// xapi's start-up introduces the cards it finds, and on <c>PIF.scan</c>; between scans only the records there are
/// refreshed (carrier, speed, addresses), so a PIF an administrator forgot stays forgotten until the next scan.
/// </summary>
public sealed class HostNicMonitor(
    IPoolDatabase database,
    HostIdentity identity,
    HostLiveness liveness,
    IOptions<AgentOptions> agent,
    IOptions<HostNetworkOptions> options,
    TimeProvider time,
    ILogger<HostNicMonitor> logger) : BackgroundService
{
    private static readonly EventId Introduced = new(7101, "PifIntroduced");
    private static readonly EventId RefreshFailed = new(7102, "PifRefreshFailed");

    private readonly SemaphoreSlim _gate = new(1, 1);

    /// <summary>Introduces a PIF for every card that has none and refreshes the others (<c>PIF.scan</c>).</summary>
    public Task ScanAsync(CancellationToken cancellationToken) => SyncAsync(introduce: true, cancellationToken);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await liveness.Registered.WaitAsync(stoppingToken);
            await SyncOrLogAsync(introduce: true, stoppingToken);
            using var timer = new PeriodicTimer(options.Value.RefreshInterval, time);
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                await SyncOrLogAsync(introduce: false, stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private async Task SyncOrLogAsync(bool introduce, CancellationToken cancellationToken)
    {
        try
        {
            await SyncAsync(introduce, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            logger.LogWarning(RefreshFailed, ex, "Could not refresh this host's network cards in the pool database; trying again in {Interval}",
                options.Value.RefreshInterval);
        }
    }

    private async Task SyncAsync(bool introduce, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            // A create that collides with another writer's (the master making the same network) is read again once.
            for (var attempt = 0; attempt < 2; attempt++)
            {
                var state = await HostInterfaces.ReadAsync(cancellationToken);
                var nics = Select(state);
                var pifs = (await database.GetAllAsync(XenClasses.PIF, cancellationToken)).Where(p => p.Get(XenApi.PIF.Host) == identity.Ref).ToList();
                if (!introduce)
                {
                    nics = nics.Where(n => pifs.Any(p => p.Get(XenApi.PIF.Device) == n.Link.Name)).ToList();
                }

                var metrics = (await database.GetAllAsync(XenApi.PIFMetrics.ClassName, cancellationToken)).ToDictionary(m => m.Ref);
                var networks = await database.GetAllAsync(XenClasses.Network, cancellationToken);
                var management = IPAddress.TryParse(agent.Value.Address, out var address) ? address : null;
                var tx = PifPlan.Plan(identity, management, state, nics, pifs, metrics, networks, time.GetUtcNow().UtcDateTime);
                if (tx.IsEmpty || await database.TryCommitAsync(tx, cancellationToken))
                {
                    foreach (var created in tx.Writes.Where(w => w.Kind == PoolWriteKind.Create && w.Object.Class == XenClasses.PIF))
                    {
                        logger.LogInformation(Introduced, "Introduced network card {Device} ({Mac}) as PIF {Pif}", created.Object.Get(XenApi.PIF.Device),
                            created.Object.Get(XenApi.PIF.MAC), created.Object.Uuid);
                    }

                    return;
                }
            }

            throw new ConcurrentUpdateException("this host's PIFs changed under two scans in a row");
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The links that are this host's cards: the ones configured, or every plain link with a bus device.</summary>
    private List<ScannedNic> Select(HostNetworkState state)
    {
        var names = options.Value.Names();
        var links = names is null
            ? state.Links.Where(l => l.Kind.Length == 0 && l.Name != "lo" && HostInterfaces.HasBusDevice(l.Name))
            : state.Links.Where(l => names.Contains(l.Name, StringComparer.Ordinal));
        return links.Select(l => new ScannedNic(l, HostInterfaces.ReadHardware(l.Name))).ToList();
    }
}
