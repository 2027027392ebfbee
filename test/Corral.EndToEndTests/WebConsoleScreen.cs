using System.Net.WebSockets;
using Corral.EndToEndTests.Screens;

namespace Corral.EndToEndTests;

/// <summary>
/// A VM's screen opened through the web console exactly as its page's noVNC opens it: the VM's <c>rfb</c> console record,
/// its location's host with the page's scheme and port (<c>ws://host/console?uuid=...&amp;session_id=...</c>), the
/// page's origin, the <c>binary</c> subprotocol, and the session the page logged in with.
/// </summary>
internal static class WebConsoleScreen
{
    /// <summary>Logs in at <paramref name="pageHost"/> (the host whose page the browser shows) and opens the VM's screen.</summary>
    public static async Task<RfbClient> OpenAsync(string pageHost, string password, string vmUuid, CancellationToken cancellationToken)
    {
        var page = new Uri($"http://{pageHost}/");
        using var api = new JsonRpcClient(page);
        await api.LoginAsync("root", password);
        var vm = (await api.CallWithSessionAsync("VM.get_by_uuid", vmUuid)).GetString()!;
        var location = await JsonRpcClient.EventuallyAsync(async () =>
        {
            foreach (var console in (await api.CallWithSessionAsync("VM.get_consoles", vm)).EnumerateArray())
            {
                var record = await api.CallWithSessionAsync("console.get_record", console.GetString());
                if (record.GetProperty("protocol").GetString() == "rfb")
                {
                    return record.GetProperty("location").GetString();
                }
            }

            return null;
        }, TimeSpan.FromSeconds(60), $"VM {vmUuid}'s rfb console");

        // console-view.js: new URL(location), protocol ws: for an http page, the page's port, session_id added.
        var url = new UriBuilder(location) { Scheme = "ws", Port = page.Port };
        url.Query = url.Query.TrimStart('?') + "&session_id=" + Uri.EscapeDataString(api.Session);
        var socket = new ClientWebSocket();
        try
        {
            socket.Options.AddSubProtocol("binary");
            socket.Options.SetRequestHeader("Origin", page.GetLeftPart(UriPartial.Authority));
            await socket.ConnectAsync(url.Uri, cancellationToken);
            return await RfbClient.ConnectAsync(WebSocketStream.Create(socket, WebSocketMessageType.Binary, ownsWebSocket: true), cancellationToken);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
