using System.Diagnostics;
using System.Net;
using System.Net.WebSockets;
using System.Text;
using Corral.Model;
using Xunit;

namespace Corral.EndToEndTests;

/// <summary>
/// The web console's server side on one real host: the app served at /console/, the API open to pages of the pool's
/// own hosts only, and a running VM's consoles (XenAPI console records) reached over websockets: the guest's serial
/// shell, shared by two viewers, and its screen over RFB.
/// </summary>
[Trait("Lab", "single-host")]
public sealed class WebConsoleServerTests : IAsyncLifetime
{
    private LabFixture _lab = null!;
    private JsonRpcClient _api = null!;
    private readonly HttpClient _http = new(new HttpClientHandler { AllowAutoRedirect = false });

    public async Task InitializeAsync()
    {
        _lab = await LabFixture.StartAsync();
        _api = new JsonRpcClient(_lab.Agent.Endpoint);
        await _api.LoginWhenReadyAsync(AgentHost.Password);
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        _api.Dispose();
        await _lab.DisposeAsync();
    }

    [Fact]
    public async Task Serves_the_app_opens_the_api_to_pool_pages_and_the_vm_consoles_over_websockets()
    {
        var root = _lab.Agent.Endpoint;

        // The app, and a browser at the host's address sent to it.
        using var app = await _http.GetAsync(new Uri(root, "/console/"));
        Assert.Equal(HttpStatusCode.OK, app.StatusCode);
        Assert.Equal("text/html", app.Content.Headers.ContentType?.MediaType);
        Assert.Contains("default-src 'self'", app.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
        using var welcome = new HttpRequestMessage(HttpMethod.Get, root);
        welcome.Headers.Accept.ParseAdd("text/html");
        using var redirected = await _http.SendAsync(welcome);
        Assert.Equal(HttpStatusCode.Redirect, redirected.StatusCode);
        Assert.Equal("/console/", redirected.Headers.Location?.OriginalString);
        using var rfbModule = await _http.GetAsync(new Uri(root, "/console/vendor/novnc/core/rfb.js"));
        Assert.Equal(HttpStatusCode.OK, rfbModule.StatusCode);
        Assert.Equal("text/javascript", rfbModule.Content.Headers.ContentType?.MediaType);

        // Cross-origin calls: a page of a pool host (this host's address, any port) may call, another site may not.
        Assert.Equal("http://127.0.0.1:8080", await PreflightAsync("http://127.0.0.1:8080"));
        Assert.Null(await PreflightAsync("http://example.invalid"));

        // A running VM gets a serial and a graphical console, located on its host.
        var host = (await _api.CallWithSessionAsync("host.get_all"))[0].GetString()!;
        var sr = (await _api.CallWithSessionAsync("SR.create", host, new Dictionary<string, string> { ["location"] = _lab.SharedDirectory }, 0,
            "Shared storage", "", "file", "user", true, new Dictionary<string, string>())).GetString()!;
        var template = await EventuallyAsync(async () =>
        {
            var refs = await _api.CallWithSessionAsync("VM.get_by_name_label", "Corral Linux test");
            return refs.GetArrayLength() > 0 ? refs[0].GetString() : null;
        }, TimeSpan.FromSeconds(120), "the template");
        var vm = (await _api.CallWithSessionAsync("VM.copy", template, "console e2e", sr)).GetString()!;
        await _api.CallWithSessionAsync("VM.set_is_a_template", vm, false);
        await _api.CallWithSessionAsync("VM.add_to_xenstore_data", vm, "vm-data/ip", $"{_lab.Subnet}.20/24");
        await _api.CallWithSessionAsync("VM.start", vm, false, false);
        var consoles = await EventuallyAsync(async () =>
        {
            var refs = (await _api.CallWithSessionAsync("VM.get_consoles", vm)).EnumerateArray().Select(r => r.GetString()!).ToList();
            return refs.Count == 2 ? refs : null;
        }, TimeSpan.FromSeconds(30), "the VM's console records");
        var byProtocol = new Dictionary<string, string>();
        foreach (var console in consoles)
        {
            var record = await _api.CallWithSessionAsync("console.get_record", console);
            Assert.Equal(vm, record.GetProperty("VM").GetString());
            var location = record.GetProperty("location").GetString()!;
            // HTTPS, as xapi writes console locations; the websockets below go over TLS with the host's own certificate.
            Assert.StartsWith($"https://127.0.0.1:{_lab.Agent.HttpsPort}/console?uuid={record.GetProperty("uuid").GetString()}", location, StringComparison.Ordinal);
            byProtocol[record.GetProperty("protocol").GetString()!] = location;
        }

        Assert.Equal(["rfb", "vt100"], byProtocol.Keys.Order());

        // No session, no console.
        var refused = await Assert.ThrowsAsync<WebSocketException>(() => ConnectAsync(byProtocol["vt100"] + "&session_id=OpaqueRef:nonsense"));
        Assert.Contains("401", refused.Message, StringComparison.Ordinal);

        // The serial console: first the end of what the guest wrote, then a shell shared by two viewers.
        using var first = await ConnectAsync(byProtocol["vt100"] + "&session_id=" + _api.Session);
        using var second = await ConnectAsync(byProtocol["vt100"] + "&session_id=" + _api.Session);
        var firstSaw = new StringBuilder();
        var secondSaw = new StringBuilder();
        var firstReading = ReadIntoAsync(first, firstSaw);
        var secondReading = ReadIntoAsync(second, secondSaw);
        await EventuallyAsync(() => Task.FromResult(Seen(firstSaw).Contains("CORRAL-GUEST-READY", StringComparison.Ordinal) ? (bool?)true : null),
            TimeSpan.FromSeconds(180), "the guest's boot message on the serial console");
        await first.SendAsync(Encoding.ASCII.GetBytes("\recho corral-$((6*7))\r"), WebSocketMessageType.Binary, true, CancellationToken.None);
        await EventuallyAsync(() => Task.FromResult(Seen(firstSaw).Contains("corral-42", StringComparison.Ordinal)
            && Seen(secondSaw).Contains("corral-42", StringComparison.Ordinal) ? (bool?)true : null), TimeSpan.FromSeconds(60), "the shell's answer on both viewers");
        await first.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", CancellationToken.None);
        await second.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", CancellationToken.None);
        await Task.WhenAll(firstReading, secondReading);

        // The graphical console speaks RFB (what noVNC expects), through the "binary" subprotocol noVNC asks for.
        using var screen = PinnedSocket();
        screen.Options.AddSubProtocol("binary");
        await screen.ConnectAsync(WebSocketUri(byProtocol["rfb"] + "&session_id=" + _api.Session), CancellationToken.None);
        Assert.Equal("binary", screen.SubProtocol);
        var greeting = new byte[12];
        var got = await screen.ReceiveAsync(greeting, CancellationToken.None);
        Assert.StartsWith("RFB 003.", Encoding.ASCII.GetString(greeting, 0, got.Count), StringComparison.Ordinal);
        await screen.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", CancellationToken.None);

        // Once halted, the VM's console is no longer served.
        await _api.CallWithSessionAsync("VM.hard_shutdown", vm);
        var gone = await Assert.ThrowsAsync<WebSocketException>(() => ConnectAsync(byProtocol["vt100"] + "&session_id=" + _api.Session));
        Assert.Contains("404", gone.Message, StringComparison.Ordinal);
        _ = OpaqueRef.Null;
    }

    private async Task<string?> PreflightAsync(string origin)
    {
        using var request = new HttpRequestMessage(HttpMethod.Options, new Uri(_lab.Agent.Endpoint, "/jsonrpc"));
        request.Headers.Add("Origin", origin);
        request.Headers.Add("Access-Control-Request-Method", "POST");
        request.Headers.Add("Access-Control-Request-Headers", "content-type");
        using var response = await _http.SendAsync(request);
        return response.Headers.TryGetValues("Access-Control-Allow-Origin", out var allowed) ? allowed.Single() : null;
    }

    private static Uri WebSocketUri(string location) => new("ws" + location["http".Length..]);

    /// <summary>A websocket client that trusts exactly the agent's own (self-signed) certificate.</summary>
    private ClientWebSocket PinnedSocket()
    {
        var fingerprint = _lab.Agent.CertificateFingerprint();
        var socket = new ClientWebSocket();
        socket.Options.RemoteCertificateValidationCallback = (_, certificate, _, _) =>
            certificate is not null && Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(certificate.GetRawCertData())) == fingerprint;
        return socket;
    }

    private async Task<ClientWebSocket> ConnectAsync(string location)
    {
        var socket = PinnedSocket();
        try
        {
            await socket.ConnectAsync(WebSocketUri(location), CancellationToken.None);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static string Seen(StringBuilder text)
    {
        lock (text)
        {
            return text.ToString();
        }
    }

    private static async Task ReadIntoAsync(ClientWebSocket socket, StringBuilder text)
    {
        var buffer = new byte[4096];
        try
        {
            while (socket.State == WebSocketState.Open)
            {
                var got = await socket.ReceiveAsync(buffer, CancellationToken.None);
                if (got.MessageType == WebSocketMessageType.Close)
                {
                    return;
                }

                lock (text)
                {
                    text.Append(Encoding.UTF8.GetString(buffer, 0, got.Count));
                }
            }
        }
        catch (WebSocketException)
        {
            // Closed by the test.
        }
    }

    private static Task<T> EventuallyAsync<T>(Func<Task<T?>> probe, TimeSpan timeout, string what) =>
        JsonRpcClient.EventuallyAsync(probe, timeout, what);
}
