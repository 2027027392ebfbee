using Corral.WebConsole.Consoles;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Cors.Infrastructure;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.StaticFiles;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Options;

namespace Corral.WebConsole.Hosting;

public static class WebConsoleExtensions
{
    /// <summary>The web console's services. The host supplies <see cref="IRunningVms"/>.</summary>
    public static IServiceCollection AddWebConsole(this IServiceCollection services, Action<WebConsoleOptions> configure)
    {
        services.Configure(configure);
        services.AddSingleton<PoolHostOrigins>();
        services.AddHostedService(sp => sp.GetRequiredService<PoolHostOrigins>());
        services.AddSingleton<SerialConsoleHub>();
        services.AddCors();
        services.AddSingleton<ICorsPolicyProvider, PoolCorsPolicyProvider>();
        return services;
    }

    /// <summary>
    /// Serves the browser app at /console/, the VMs' consoles as websockets at /console?uuid=, and lets the pool's own
    /// console pages call this host's API (JSON-RPC, rrd_updates) across origins. Call before mapping the API.
    /// </summary>
    public static WebApplication UseWebConsole(this WebApplication app)
    {
        var options = app.Services.GetRequiredService<IOptions<WebConsoleOptions>>().Value;
        app.UseCors();
        app.UseWebSockets(new WebSocketOptions { KeepAliveInterval = TimeSpan.FromSeconds(20) });

        Directory.CreateDirectory(options.ContentDirectory);
        var files = new PhysicalFileProvider(options.ContentDirectory);
        var request = new PathString(WebConsolePaths.App.TrimEnd('/'));
        app.UseWhen(context => context.Request.Path.StartsWithSegments(request), branch => branch.Use(async (context, next) =>
        {
            // The app's own files only, and fresh after an upgrade.
            context.Response.Headers.ContentSecurityPolicy =
                "default-src 'self'; connect-src 'self' http: https: ws: wss:; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'";
            context.Response.Headers.CacheControl = "no-cache";
            await next(context);
        }));
        // "/console" itself (exactly: routing would also give it "/console/", and static files step aside for a routed
        // endpoint) is the websocket endpoint of XenServer's console locations.
        app.Use(async (context, next) =>
        {
            if (context.Request.Path.Value == ConsoleLocation.Path)
            {
                await ConsoleEndpoint.HandleAsync(context);
                return;
            }

            await next(context);
        });
        // The app, under "/console/".
        app.UseDefaultFiles(new DefaultFilesOptions { FileProvider = files, RequestPath = request, RedirectToAppendTrailingSlash = false });
        var types = new FileExtensionContentTypeProvider();
        types.Mappings[".mjs"] = "text/javascript";
        app.UseStaticFiles(new StaticFileOptions { FileProvider = files, RequestPath = request, ContentTypeProvider = types });
        return app;
    }
}
