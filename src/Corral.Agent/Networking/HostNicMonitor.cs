using System.Net;
using Corral.Agent.Hosting;
using Corral.Model;
using Corral.Networking;
using Corral.Platform;
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
    PifAddressStore addresses,
    PifAddressing addressing,
    TimeProvider time,
    ILogger<HostNicMonitor> logger) : BackgroundService
{
    private static readonly EventId Introduced = new(7101, "PifIntroduced");
    private static readonly EventId RefreshFailed = new(7102, "PifRefreshFailed");
    private static readonly EventId LinkSet = new(7103, "PifLinkSet");
    private static readonly EventId IpReconfigured = new(7104, "PifIpReconfigured");
    private static readonly EventId IpRestored = new(7105, "PifIpRestored");

    private readonly SemaphoreSlim _gate = new(1, 1);

    /// <summary>Introduces a PIF for every card that has none and refreshes the others (<c>PIF.scan</c>).</summary>
    public Task ScanAsync(CancellationToken cancellationToken) => SyncAsync(Scanned, cancellationToken);

    /// <summary>Refreshes the PIFs there are from what the host has now.</summary>
    public Task RefreshAsync(CancellationToken cancellationToken) => SyncAsync(Represented, cancellationToken);

    /// <summary>
    /// <c>PIF.introduce</c>: a PIF for the named link of this host, as xapi's: DUPLICATE_PIF_DEVICE_NAME when one exists,
    /// COULD_NOT_FIND_NETWORK_INTERFACE_WITH_SPECIFIED_DEVICE_NAME_AND_MAC_ADDRESS when the host has no such link (with
    /// that MAC, when one is given), and a bridge, tap or loopback is no card. Returns the PIF's reference.
    /// </summary>
    public async Task<string> IntroduceAsync(string device, string mac, bool managed, CancellationToken cancellationToken)
    {
        mac = mac.ToLowerInvariant();
        await SyncAsync((state, pifs) =>
        {
            if (pifs.Any(p => p.Get(XenApi.PIF.Device) == device))
            {
                throw new XenApiException("DUPLICATE_PIF_DEVICE_NAME", device);
            }

            var link = state.Find(device);
            if (link is null || link.IsBridge || link.Kind is "tun" or "vlan" or "bond" || device == "lo" || (mac.Length > 0 && link.Mac != mac))
            {
                throw new XenApiException("COULD_NOT_FIND_NETWORK_INTERFACE_WITH_SPECIFIED_DEVICE_NAME_AND_MAC_ADDRESS", device, mac);
            }

            return [.. Represented(state, pifs), new ScannedNic(link, HostInterfaces.ReadHardware(device)) { Managed = managed }];
        }, cancellationToken);
        return PifPlan.PifRefOf(identity.Uuid, device);
    }

    /// <summary><c>PIF.plug</c> / <c>PIF.unplug</c>: the card's link up or down, and its record refreshed.</summary>
    public async Task SetLinkAsync(string device, bool up, CancellationToken cancellationToken)
    {
        BridgeNetworking.ValidateName(device);
        await CommandRunner.RunCheckedAsync("ip", ["link", "set", "dev", device, up ? "up" : "down"], cancellationToken);
        logger.LogInformation(LinkSet, "Network card {Device} brought {State} (PIF.{Operation})", device, up ? "up" : "down", up ? "plug" : "unplug");
        await RefreshAsync(cancellationToken);
    }

    /// <summary>
    /// <c>PIF.reconfigure_ip</c> on this host: the configuration kept (<see cref="PifAddressStore"/>, applied again at every
    /// start) and given to the link that carries the card's addresses (its bridge, when it is a port of one); the record
    /// refreshed. PIF_CONFIGURATION_ERROR when the link is gone or iproute2 or the DHCP client refuse.
    /// </summary>
    public async Task ReconfigureIpAsync(string pifRef, string device, PifAddressSettings settings, CancellationToken cancellationToken)
    {
        var state = await HostInterfaces.ReadAsync(cancellationToken);
        var nic = state.Find(device) ?? throw new XenApiException("PIF_CONFIGURATION_ERROR", pifRef, $"this host has no network card {device}");
        addresses.Save(device, settings);
        var link = LinkOf(nic, state);
        try
        {
            await addressing.ApplyAsync(link, settings, cancellationToken);
        }
        catch (Exception ex) when (ex is CommandFailedException or FileNotFoundException)
        {
            throw new XenApiException("PIF_CONFIGURATION_ERROR", pifRef, ex.Message);
        }

        logger.LogInformation(IpReconfigured, "Network card {Device}'s IP configuration ({Link}) is now {Mode}{Address} (PIF.reconfigure_ip)",
            device, link, settings.Mode, settings.Mode == IpConfigurationMode.Static ? $" {settings.IP}/{settings.Netmask}" : "");
        await RefreshAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await liveness.Registered.WaitAsync(stoppingToken);
            await RestoreAddressesAsync(stoppingToken);
            await SyncOrLogAsync(Scanned, stoppingToken);
            using var timer = new PeriodicTimer(options.Value.RefreshInterval, time);
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                await SyncOrLogAsync(Represented, stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>The link where a card's addresses go: the bridge it is a port of (as XenServer's xenbrN), else the card.</summary>
    private static string LinkOf(HostLink nic, HostNetworkState state) =>
        nic.Master is { } master && state.Find(master) is { IsBridge: true } ? master : nic.Name;

    /// <summary>At start: each configuration given to a card, where its link no longer has it (the host rebooted).</summary>
    private async Task RestoreAddressesAsync(CancellationToken cancellationToken)
    {
        try
        {
            var state = await HostInterfaces.ReadAsync(cancellationToken);
            foreach (var (device, settings) in addresses.Load())
            {
                if (state.Find(device) is { } nic && state.Find(LinkOf(nic, state)) is { } link && await addressing.EnsureAsync(link, settings, cancellationToken))
                {
                    logger.LogInformation(IpRestored, "Network card {Device}'s IP configuration ({Link}) restored: {Mode}", device, link.Name, settings.Mode);
                }
            }
        }
        catch (Exception ex) when (ex is CommandFailedException or FileNotFoundException or InvalidDataException)
        {
            logger.LogError(IpRestored, ex, "Could not restore the IP configurations given to this host's network cards");
        }
    }

    private async Task SyncOrLogAsync(Func<HostNetworkState, IReadOnlyList<XenObject>, IReadOnlyList<ScannedNic>> choose, CancellationToken cancellationToken)
    {
        try
        {
            await SyncAsync(choose, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            logger.LogWarning(RefreshFailed, ex, "Could not refresh this host's network cards in the pool database; trying again in {Interval}",
                options.Value.RefreshInterval);
        }
    }

    /// <param name="choose">The cards to represent, from the host's links and its PIFs: those there are, or more.</param>
    private async Task SyncAsync(Func<HostNetworkState, IReadOnlyList<XenObject>, IReadOnlyList<ScannedNic>> choose, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            // A create that collides with another writer's (the master making the same network) is read again once.
            for (var attempt = 0; attempt < 2; attempt++)
            {
                var state = await HostInterfaces.ReadAsync(cancellationToken);
                var pifs = (await database.GetAllAsync(XenClasses.PIF, cancellationToken)).Where(p => p.Get(XenApi.PIF.Host) == identity.Ref).ToList();
                var nics = choose(state, pifs);
                var metrics = (await database.GetAllAsync(XenApi.PIFMetrics.ClassName, cancellationToken)).ToDictionary(m => m.Ref);
                var networks = await database.GetAllAsync(XenClasses.Network, cancellationToken);
                var management = IPAddress.TryParse(agent.Value.Address, out var address) ? address : null;
                var tx = PifPlan.Plan(identity, management, state, nics, pifs, metrics, networks, time.GetUtcNow().UtcDateTime, addresses.Load());
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

    /// <summary>The cards a scan represents: the ones configured (or, by default, every plain link with a bus device) and those that have PIFs.</summary>
    private IReadOnlyList<ScannedNic> Scanned(HostNetworkState state, IReadOnlyList<XenObject> pifs)
    {
        var names = options.Value.Names();
        var links = names is null
            ? state.Links.Where(l => l.Kind.Length == 0 && l.Name != "lo" && HostInterfaces.HasBusDevice(l.Name))
            : state.Links.Where(l => names.Contains(l.Name, StringComparer.Ordinal));
        return links.Select(l => l.Name).Union(pifs.Select(p => p.Get(XenApi.PIF.Device)), StringComparer.Ordinal)
            .Select(state.Find).OfType<HostLink>().Select(l => new ScannedNic(l, HostInterfaces.ReadHardware(l.Name))).ToList();
    }

    /// <summary>The links of the host that have PIFs (a PIF whose link is gone is left for the plan to detach).</summary>
    private static IReadOnlyList<ScannedNic> Represented(HostNetworkState state, IReadOnlyList<XenObject> pifs) =>
        pifs.Select(p => p.Get(XenApi.PIF.Device)).Distinct(StringComparer.Ordinal).Select(state.Find).OfType<HostLink>()
            .Select(l => new ScannedNic(l, HostInterfaces.ReadHardware(l.Name))).ToList();
}
