using System.Collections.Concurrent;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text.Json;
using Corral.Api;
using Corral.Api.Http;
using Corral.Api.Sessions;
using Corral.EndToEndTests.Screens;
using Corral.Hypervisor;
using Corral.Hypervisor.Qemu;
using Corral.Model;
using Corral.PoolDatabase;
using Corral.PoolDatabase.Etcd;
using Corral.Storage;
using Corral.WebConsole.Consoles;
using Corral.WebConsole.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Xunit;

namespace Corral.IntegrationTests;

/// <summary>
/// The web console's graphical console carries a VM's real screen: a real QEMU (no disk: its firmware's text screen),
/// its console record in a real pool database, the web console's /console websocket, and the tests' RFB viewer opening
/// it as the page's noVNC does (the record's location, the session, the page's origin, the binary subprotocol). What
/// the viewer reads is QEMU's own screendump of the VM. InstallFromMediaLabTests does the same in a lab while the
/// installer runs.
/// </summary>
public sealed class WebConsoleScreenTests : IAsyncLifetime
{
    private readonly string _root = Path.Combine("/tmp", "cw-" + Guid.NewGuid().ToString("N")[..8]);
    private readonly RunningVms _running = new();
    private EtcdFixture _etcd = null!;
    private WebApplication _app = null!;
    private QemuHypervisor _hypervisor = null!;
    private Uri _page = null!;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_root);
        _etcd = await EtcdFixture.StartAsync();
        var builder = WebApplication.CreateBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Services.AddEtcdPoolDatabase(o => o.Endpoints = _etcd.Endpoint);
        builder.Services.AddXenApi();
        builder.Services.AddSingleton(SrDrivers.Default);
        builder.Services.AddSingleton<IRunningVms>(_running);
        builder.Services.AddWebConsole(o =>
        {
            o.ContentDirectory = Path.Combine(_root, "app");
            o.OwnAddress = "127.0.0.1"; // as the agent gives its own address: its pages may open consoles
        });
        _app = builder.Build();
        _app.UseWebConsole();
        _app.MapXenApi();
        await _app.StartAsync();
        await _app.Services.GetRequiredService<SessionService>().SetPasswordAsync("root", "pw", default);
        _page = new Uri(new Uri(_app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()), "/console/");
        _hypervisor = new QemuHypervisor(Options.Create(new QemuOptions
        {
            RuntimeDirectory = Path.Combine(_root, "vms"),
            StateDirectory = Path.Combine(_root, "state"),
            ForceAccelerator = "tcg",
        }), NullLogger<QemuHypervisor>.Instance);
    }

    public async Task DisposeAsync()
    {
        try
        {
            foreach (var process in _running.All)
            {
                await process.KillAsync(CancellationToken.None);
                await process.DisposeAsync();
            }

            await _hypervisor.DisposeAsync();
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
        finally
        {
            await _etcd.DisposeAsync();
            Directory.Delete(_root, recursive: true);
        }
    }

    [Fact]
    public async Task A_viewer_through_the_console_websocket_reads_the_screen_qemu_draws()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var uuid = Guid.NewGuid().ToString();
        var process = await _hypervisor.StartAsync(new VmLaunchSpec(uuid, "screen-" + uuid[..8], 128L << 20, 1, false, [], [],
            new Dictionary<string, string>()), timeout.Token);
        _running.Add(process);
        var location = await RecordConsoleAsync(uuid, timeout.Token);
        var session = await LogInAsync();

        await using var viewer = await WebConsoleViewer.OpenAsync(location, _page, session, timeout.Token);
        Assert.Contains("screen-" + uuid[..8], viewer.Name, StringComparison.Ordinal);
        var match = await ScreenWatch.MatchAsync(viewer, new VmRuntimePaths(Path.Combine(_root, "vms", uuid)).Monitor, () => Task.FromResult(true),
            TimeSpan.FromSeconds(90), timeout.Token);
        Assert.Equal((match.Qemu.Width, match.Qemu.Height), (match.Viewer.Width, match.Viewer.Height));

        // The same console from a page of another site, or without a session, shows nothing.
        var foreign = await Assert.ThrowsAsync<WebSocketException>(() =>
            WebConsoleViewer.OpenAsync(location, _page, session, timeout.Token, o => o.SetRequestHeader("Origin", "http://example.invalid")));
        Assert.Contains("403", foreign.Message, StringComparison.Ordinal);
        var anonymous = await Assert.ThrowsAsync<WebSocketException>(() => WebConsoleViewer.OpenAsync(location, _page, "OpaqueRef:nonsense", timeout.Token));
        Assert.Contains("401", anonymous.Message, StringComparison.Ordinal);
    }

    /// <summary>The VM and its rfb console as the agent records them (VmConsoleRecords), located on this host's HTTPS port.</summary>
    private async Task<string> RecordConsoleAsync(string vmUuid, CancellationToken cancellationToken)
    {
        var database = _app.Services.GetRequiredService<IPoolDatabase>();
        var tx = new PoolTransaction();
        var vm = tx.Create(XenClasses.VMSchema, new Dictionary<string, object?> { ["uuid"] = vmUuid, ["name_label"] = "screen", ["power_state"] = "Running" });
        var consoleUuid = Guid.NewGuid().ToString();
        var location = ConsoleLocation.For("127.0.0.1", 443, consoleUuid);
        var console = tx.Create(XenClasses.ConsoleSchema);
        console.Set(XenApi.Console.Uuid, consoleUuid);
        console.Set(XenApi.Console.Protocol, ConsoleProtocol.Rfb);
        console.Set(XenApi.Console.VM, vm.Ref);
        console.Set(XenApi.Console.Location, location);
        await database.CommitAsync(tx, cancellationToken);
        return location;
    }

    private async Task<string> LogInAsync()
    {
        using var http = new HttpClient();
        using var response = await http.PostAsJsonAsync(new Uri(_page, "/jsonrpc"),
            new { jsonrpc = "2.0", method = "session.login_with_password", @params = new[] { "root", "pw", "1.0", "test" }, id = 1 });
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("result").GetString()!;
    }

    /// <summary>This host's VM processes, as the agent's supervisor lists them for the web console.</summary>
    private sealed class RunningVms : IRunningVms
    {
        private readonly ConcurrentDictionary<string, IVmProcess> _byUuid = new(StringComparer.Ordinal);

        public IReadOnlyCollection<IVmProcess> All => _byUuid.Values.ToList();

        public void Add(IVmProcess process) => _byUuid[process.VmUuid] = process;

        public IVmProcess? Find(string vmUuid) => _byUuid.GetValueOrDefault(vmUuid);
    }
}
