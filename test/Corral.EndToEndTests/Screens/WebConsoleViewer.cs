using System.Net.WebSockets;

namespace Corral.EndToEndTests.Screens;

/// <summary>
/// A VM's screen opened through the web console exactly as its page's noVNC opens it (console-view.js): the console
/// record's location with the page's scheme and port and the page's session (<c>ws://host/console?uuid=...&amp;session_id=...</c>),
/// the page's origin, and the <c>binary</c> subprotocol; then RFB over the websocket's binary messages.
/// </summary>
public static class WebConsoleViewer
{
    /// <summary>The websocket address the page computes from a console's location (consoleSocketUrl in console-view.js).</summary>
    public static Uri SocketUrl(string location, Uri page, string session)
    {
        var url = new UriBuilder(location) { Scheme = page.Scheme == "https" ? "wss" : "ws", Port = page.Port };
        url.Query = url.Query.TrimStart('?') + "&session_id=" + Uri.EscapeDataString(session);
        return url.Uri;
    }

    /// <param name="location">The rfb console record's location.</param>
    /// <param name="page">The page the browser shows (a pool host's /console/), whose scheme, port and origin count.</param>
    /// <param name="configure">Anything more a test needs of the socket (a pinned certificate for wss).</param>
    public static async Task<RfbClient> OpenAsync(string location, Uri page, string session, CancellationToken cancellationToken,
        Action<ClientWebSocketOptions>? configure = null)
    {
        var socket = new ClientWebSocket();
        try
        {
            socket.Options.AddSubProtocol("binary");
            socket.Options.SetRequestHeader("Origin", page.GetLeftPart(UriPartial.Authority));
            configure?.Invoke(socket.Options);
            await socket.ConnectAsync(SocketUrl(location, page, session), cancellationToken);
            if (socket.SubProtocol != "binary")
            {
                throw new WebSocketException($"the server chose subprotocol '{socket.SubProtocol}', not noVNC's 'binary'");
            }

            return await RfbClient.ConnectAsync(WebSocketStream.Create(socket, WebSocketMessageType.Binary, ownsWebSocket: true), cancellationToken);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
