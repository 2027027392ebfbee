using System.Net.WebSockets;
using Corral.Api.Audit;
using Corral.Api.Sessions;
using Corral.Hypervisor;
using Corral.Model;
using Corral.PoolDatabase;
using Corral.WebConsole.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Corral.WebConsole.Consoles;

/// <summary>
/// <c>GET /console?uuid=&lt;console&gt;&amp;session_id=&lt;session&gt;</c> as a websocket: the console of a VM running on
/// this host, the serial line (vt100) or the screen (rfb, for noVNC). A browser that opens /console itself is sent to
/// the app at /console/.
/// </summary>
internal static class ConsoleEndpoint
{
    private const int SerialTailBytes = 8 * 1024;
    private const string ConsolePermission = "http/connect_console_ws";

    public static async Task HandleAsync(HttpContext context)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            context.Response.Redirect(WebConsolePaths.App);
            return;
        }

        var services = context.RequestServices;
        var ct = context.RequestAborted;
        var origins = services.GetRequiredService<PoolHostOrigins>();
        if (context.Request.Headers.Origin is [{ } origin] && !origins.IsAllowed(origin))
        {
            await RefuseAsync(context, StatusCodes.Status403Forbidden, "the page is not served by a host of this pool");
            return;
        }

        SessionAccess access;
        try
        {
            access = await services.GetRequiredService<SessionService>().ValidateAsync(context.Request.Query["session_id"].ToString(), ct);
        }
        catch (XenApiException ex)
        {
            await RefuseAsync(context, StatusCodes.Status401Unauthorized, string.Join(' ', ex.ErrorDescription));
            return;
        }

        // xapi's permission for a console over a websocket: vm-operator and up; a read-only user sees no screen.
        var audit = services.GetRequiredService<AuditLog>();
        var session = context.Request.Query["session_id"].ToString();
        var uuid = context.Request.Query["uuid"].ToString();
        if (!access.Allows(ConsolePermission))
        {
            await audit.RecordHttpAsync(session, access, allowed: false, "ERROR:" + ErrorCodes.RbacPermissionDenied, ConsolePermission,
                [new AuditArgument("uuid", "", uuid.Length <= 64 ? uuid : "", "")], ct);
            await RefuseAsync(context, StatusCodes.Status403Forbidden, $"{ErrorCodes.RbacPermissionDenied} {ConsolePermission}");
            return;
        }

        var database = services.GetRequiredService<IPoolDatabase>();
        var console = uuid.Length == 0 ? null : await database.FindByUuidAsync(XenClasses.Console, uuid, ct);
        if (console is null)
        {
            await audit.RecordHttpAsync(session, access, allowed: true, "ERROR:" + ErrorCodes.UuidInvalid, ConsolePermission,
                [new AuditArgument("uuid", "", uuid.Length <= 64 ? uuid : "", "")], ct);
            await RefuseAsync(context, StatusCodes.Status404NotFound, $"{ErrorCodes.UuidInvalid} console {uuid}");
            return;
        }

        var vm = await database.TryGetAsync(XenClasses.VM, console.Get(XenApi.Console.VM), ct);
        var process = vm is null ? null : services.GetRequiredService<IRunningVms>().Find(vm.Uuid);
        IReadOnlyList<AuditArgument> arguments = [new("console", "", console.Uuid, console.Ref), new("VM", vm?.Get(XenApi.VM.NameLabel) ?? "", vm?.Uuid ?? "", vm?.Ref ?? "")];
        if (vm is null || process is null)
        {
            await audit.RecordHttpAsync(session, access, allowed: true, "ERROR:VM_NOT_RESIDENT_HERE", ConsolePermission, arguments, ct);
            // It stopped, or moved: its console records name its new host.
            await RefuseAsync(context, StatusCodes.Status404NotFound, "the VM does not run on this host");
            return;
        }

        var logger = services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(ConsoleEndpoint));
        // noVNC asks for the "binary" subprotocol; a browser drops a connection whose answer names none it asked for.
        var subProtocol = context.WebSockets.WebSocketRequestedProtocols.FirstOrDefault(p => p == "binary");
        using var socket = await context.WebSockets.AcceptWebSocketAsync(subProtocol);
        var protocol = console.Get(XenApi.Console.Protocol);
        await audit.RecordHttpAsync(session, access, allowed: true, "OK", ConsolePermission, arguments, ct);
        logger.LogInformation("{Protocol} console of VM {Vm} opened from {Remote}", protocol, vm.Get(XenApi.VM.NameLabel),
            context.Connection.RemoteIpAddress);
        try
        {
            if (protocol == ConsoleProtocol.Rfb)
            {
                await using var screen = await process.OpenConsoleAsync(VmConsoleKind.Graphical, ct);
                await WebSocketPump.RunAsync(socket, screen, "the VM's screen closed", ct);
            }
            else
            {
                await ServeSerialAsync(socket, process, services.GetRequiredService<SerialConsoleHub>(), ct);
            }
        }
        catch (Exception ex) when (ex is IOException or WebSocketException or System.Net.Sockets.SocketException or OperationCanceledException)
        {
            logger.LogDebug(ex, "Console of VM {Vm} ended", vm.Get(XenApi.VM.NameLabel));
            await WebSocketPump.CloseAsync(socket, "the console ended");
        }
    }

    private static async Task ServeSerialAsync(WebSocket socket, IVmProcess process, SerialConsoleHub hub, CancellationToken cancellationToken)
    {
        await using var viewer = await hub.WatchAsync(process, cancellationToken);
        // What the guest wrote last (its prompt, say), before what it writes from now on.
        var tail = await process.ReadSerialConsoleTailAsync(SerialTailBytes, cancellationToken);
        if (tail.Length > 0)
        {
            await socket.SendAsync(tail, WebSocketMessageType.Binary, endOfMessage: true, cancellationToken);
        }

        await WebSocketPump.RunAsync(socket, async ct =>
        {
            await foreach (var chunk in viewer.Received.ReadAllAsync(ct))
            {
                await socket.SendAsync(chunk, WebSocketMessageType.Binary, endOfMessage: true, ct);
            }
        }, viewer.TypeAsync, "the VM stopped running here", cancellationToken);
    }

    private static async Task RefuseAsync(HttpContext context, int status, string reason)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "text/plain";
        await context.Response.WriteAsync(reason + "\n", context.RequestAborted);
    }
}
