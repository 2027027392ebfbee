using Corral.Agent.Hosting;
using Corral.Api.Events;
using Corral.Api.Pool;
using Corral.Api.Sessions;
using Corral.Model;
using Corral.PoolDatabase;
using Corral.WebConsole.Consoles;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;

namespace Corral.Agent.Vms;

/// <summary>
/// Keeps the XenAPI <c>console</c> records of the VMs running here: a serial (vt100) and a graphical (rfb) console per
/// VM, whose location names this host, which serves them (a VM that moved gets its locations rewritten by its new
/// host). The master also removes the consoles of VMs that no longer exist.
/// </summary>
public sealed class VmConsoleRecords(
    IPoolDatabase database,
    VmSupervisor supervisor,
    HostIdentity identity,
    MasterState master,
    IOptions<AgentOptions> agentOptions,
    IOptions<ApiOptions> apiOptions,
    IServer server,
    EventHub events,
    TimeProvider clock,
    ILogger<VmConsoleRecords> logger) : BackgroundService
{
    // Rounds run when a VM or console record changes, or the VMs running here do; the recheck is a backstop.
    private static readonly TimeSpan Recheck = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan Retry = TimeSpan.FromSeconds(2);
    private static readonly IReadOnlySet<string> Watched = new HashSet<string>(StringComparer.Ordinal) { XenClasses.VM, XenClasses.Console };
    private static readonly ConsoleProtocol[] Protocols = [ConsoleProtocol.Vt100, ConsoleProtocol.Rfb];

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            // Taken before the round: a change during it wakes the next wait at once.
            var seen = events.Revision;
            var local = supervisor.NextChange;
            var wait = Recheck;
            try
            {
                await ReconcileAsync(stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                // The pool database out of reach, or a VM changed under us: the next round sees the new state.
                logger.LogDebug(ex, "Console records not reconciled this round");
                wait = Retry;
            }

            using var woken = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
            var changed = events.WaitForChangeAsync(seen, Watched, wait, clock, woken.Token);
            await Task.WhenAny(changed, local);
            await woken.CancelAsync();
            await changed.ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    /// <summary>One round: the console records this host should have, written in one transaction if any differ.</summary>
    public async Task ReconcileAsync(CancellationToken cancellationToken)
    {
        var consoles = await database.GetAllAsync(XenClasses.Console, cancellationToken);
        var vms = (await database.GetAllAsync(XenClasses.VM, cancellationToken)).ToDictionary(v => v.Ref, StringComparer.Ordinal);
        var tx = new PoolTransaction();
        foreach (var vm in vms.Values.Where(v => v.Get(XenApi.VM.ResidentOn) == identity.Ref && supervisor.Find(v.Uuid) is not null))
        {
            foreach (var protocol in Protocols)
            {
                var existing = consoles.Where(c => c.Get(XenApi.Console.VM) == vm.Ref && c.Get(XenApi.Console.Protocol) == protocol).ToList();
                if (existing.Count == 0)
                {
                    var uuid = Guid.NewGuid().ToString();
                    var console = tx.Create(XenClasses.ConsoleSchema);
                    console.Set(XenApi.Console.Uuid, uuid);
                    console.Set(XenApi.Console.Protocol, protocol);
                    console.Set(XenApi.Console.VM, vm.Ref);
                    console.Set(XenApi.Console.Location, LocationOf(uuid));
                    continue;
                }

                foreach (var duplicate in existing.Skip(1))
                {
                    tx.Delete(duplicate);
                }

                if (existing[0].Get(XenApi.Console.Location) != LocationOf(existing[0].Uuid))
                {
                    var moved = existing[0].Clone();
                    moved.Set(XenApi.Console.Location, LocationOf(moved.Uuid));
                    tx.Update(moved);
                }
            }
        }

        if (master.MasterRef == identity.Ref)
        {
            foreach (var orphan in consoles.Where(c => !vms.ContainsKey(c.Get(XenApi.Console.VM))))
            {
                tx.Delete(orphan);
            }
        }

        if (!tx.IsEmpty)
        {
            await database.CommitAsync(tx, cancellationToken);
        }
    }

    private string LocationOf(string consoleUuid) => ConsoleLocation.For(agentOptions.Value.Address, ServedPort(), consoleUuid);

    /// <summary>The port this host serves HTTPS on (the consoles are served there, as xapi's), else the pool's HTTPS port.</summary>
    private int ServedPort() =>
        server.Features.Get<IServerAddressesFeature>()?.Addresses
            .Select(a => Uri.TryCreate(a.Replace("*", "localhost", StringComparison.Ordinal).Replace("+", "localhost", StringComparison.Ordinal), UriKind.Absolute, out var uri)
                && uri.Scheme == Uri.UriSchemeHttps ? uri.Port : 0)
            .FirstOrDefault(p => p > 0) is > 0 and var port ? port : apiOptions.Value.PeerPort;
}
