using System.Net.WebSockets;

namespace Corral.WebConsole.Consoles;

/// <summary>Copies bytes between a browser's websocket and a console stream, both ways, until either side ends.</summary>
internal static class WebSocketPump
{
    private const int BufferSize = 16 * 1024;

    /// <summary>Runs until the browser leaves, the stream ends or <paramref name="cancellationToken"/> fires; then closes the websocket.</summary>
    public static Task RunAsync(WebSocket socket, Stream stream, string endReason, CancellationToken cancellationToken) =>
        RunAsync(socket, ct => CopyToBrowserAsync(stream, socket, ct), async (data, ct) => await stream.WriteAsync(data, ct),
            endReason, cancellationToken);

    /// <summary>
    /// Runs <paramref name="toBrowser"/> (what the console sends) and passes what the browser sends to
    /// <paramref name="fromBrowser"/>, until either side ends; then closes the websocket with <paramref name="endReason"/>.
    /// </summary>
    public static async Task RunAsync(WebSocket socket, Func<CancellationToken, Task> toBrowser, Func<ReadOnlyMemory<byte>, CancellationToken, Task> fromBrowser,
        string endReason, CancellationToken cancellationToken)
    {
        using var both = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var sending = toBrowser(both.Token);
        var receiving = CopyFromBrowserAsync(socket, fromBrowser, both.Token);
        await Task.WhenAny(sending, receiving);
        await both.CancelAsync();
        await CloseAsync(socket, endReason);
        await Task.WhenAll(Quietly(sending), Quietly(receiving));
    }

    private static async Task CopyFromBrowserAsync(WebSocket socket, Func<ReadOnlyMemory<byte>, CancellationToken, Task> write, CancellationToken cancellationToken)
    {
        var buffer = new byte[BufferSize];
        while (socket.State == WebSocketState.Open)
        {
            var received = await socket.ReceiveAsync(buffer.AsMemory(), cancellationToken);
            if (received.MessageType == WebSocketMessageType.Close)
            {
                return;
            }

            if (received.Count > 0)
            {
                await write(buffer.AsMemory(0, received.Count), cancellationToken);
            }
        }
    }

    private static async Task CopyToBrowserAsync(Stream stream, WebSocket socket, CancellationToken cancellationToken)
    {
        var buffer = new byte[BufferSize];
        while (true)
        {
            var read = await stream.ReadAsync(buffer, cancellationToken);
            if (read == 0)
            {
                return;
            }

            await socket.SendAsync(buffer.AsMemory(0, read), WebSocketMessageType.Binary, endOfMessage: true, cancellationToken);
        }
    }

    public static async Task CloseAsync(WebSocket socket, string reason)
    {
        if (socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
        {
            using var patience = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            try
            {
                await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, reason, patience.Token);
            }
            catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException)
            {
                // The browser went first: nothing left to say.
            }
        }
    }

    private static async Task Quietly(Task task)
    {
        try
        {
            await task;
        }
        catch (Exception ex) when (ex is OperationCanceledException or WebSocketException or IOException or ObjectDisposedException)
        {
            // One side ended: the other's error is the expected consequence.
        }
    }
}
