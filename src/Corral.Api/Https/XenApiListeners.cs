using System.Net;
using System.Net.Security;
using Corral.Api.Client.Tls;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;

namespace Corral.Api.Https;

/// <summary>
/// The host's two listeners, serving the same application (the XenAPI on every path, the console, rrd_updates): HTTPS
/// with the host's certificate, TLS 1.2 and 1.3, whatever name the client asks for or none (XenCenter's raw HTTP sends
/// no SNI); and plain HTTP, closed while <c>host.https_only</c> is true. HTTP/1.1, as xapi.
/// </summary>
public static class XenApiListeners
{
    public static KestrelServerOptions ListenXenApi(this KestrelServerOptions kestrel, HttpsOptions options, HostCertificate certificate)
    {
        ArgumentNullException.ThrowIfNull(kestrel);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(certificate);
        options.Validate();
        Listen(kestrel, options, options.HttpsPort, listen => listen.UseHttps(new TlsHandshakeCallbackOptions
        {
            // The one certificate (and its chain) for any name asked, and for none; the one served now, so that a
            // replaced certificate is presented from the next handshake on.
            OnConnection = _ => ValueTask.FromResult(new SslServerAuthenticationOptions
            {
                ServerCertificateContext = certificate.Context,
                EnabledSslProtocols = PinnedTls.Protocols,
                ClientCertificateRequired = false,
            }),
        }));
        Listen(kestrel, options, options.HttpPort, listen => listen.Use(next => connection =>
            // A closed port, as xapi's firewall makes it: the connection ends before a byte is read.
            listen.ApplicationServices.GetRequiredService<HttpsOnlyGate>().HttpsOnly ? Task.CompletedTask : next(connection)));
        return kestrel;
    }

    /// <summary>Ends requests that still arrive over plain HTTP (a keep-alive connection older than https_only). Call first.</summary>
    public static IApplicationBuilder UseHttpsOnlyGate(this IApplicationBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var gate = app.ApplicationServices.GetRequiredService<HttpsOnlyGate>();
        return app.Use(async (HttpContext context, RequestDelegate next) =>
        {
            if (!context.Request.IsHttps && gate.HttpsOnly)
            {
                context.Abort();
                return;
            }

            await next(context);
        });
    }

    private static void Listen(KestrelServerOptions kestrel, HttpsOptions options, int port, Action<ListenOptions> configure)
    {
        void Configure(ListenOptions listen)
        {
            listen.Protocols = HttpProtocols.Http1;
            // Counted before TLS: an address past its connections costs no handshake (ClientLimitOptions).
            listen.Use(next => async connection =>
            {
                var counter = listen.ApplicationServices.GetRequiredService<Http.ClientConnectionCounter>();
                var address = (connection.RemoteEndPoint as IPEndPoint)?.Address;
                if (!counter.TryEnter(address))
                {
                    connection.Abort();
                    return;
                }

                try
                {
                    await next(connection);
                }
                finally
                {
                    counter.Exit(address);
                }
            });
            configure(listen);
        }

        // Slow clients (Kestrel's defaults, stated): headers within 30 s, a body at 240 bytes/s after 5 s, an idle
        // keep-alive connection closed after 130 s.
        kestrel.Limits.RequestHeadersTimeout = TimeSpan.FromSeconds(30);
        kestrel.Limits.MinRequestBodyDataRate = new MinDataRate(240, TimeSpan.FromSeconds(5));
        kestrel.Limits.KeepAliveTimeout = TimeSpan.FromSeconds(130);

        if (options.ListenAddress == "*")
        {
            kestrel.ListenAnyIP(port, Configure);
        }
        else
        {
            kestrel.Listen(IPAddress.Parse(options.ListenAddress), port, Configure);
        }
    }
}
