using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Corral.Api.Https;

public static class HttpsServiceCollectionExtensions
{
    /// <summary>
    /// The host's HTTPS service around <see cref="ApiServiceCollectionExtensions.AddXenApi"/>: its certificate, its
    /// <c>Certificate</c> record kept in the pool database, and its <c>https_only</c> applied to the HTTP port. Kestrel's
    /// listeners come from <see cref="XenApiListeners.ListenXenApi"/>.
    /// </summary>
    public static IServiceCollection AddXenApiHttps(this IServiceCollection services, HttpsOptions options, HostCertificate certificate)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(certificate);
        services.AddOptions<HttpsOptions>()
            .Configure(o =>
            {
                o.ListenAddress = options.ListenAddress;
                o.HttpPort = options.HttpPort;
                o.HttpsPort = options.HttpsPort;
                o.CertificatePath = options.CertificatePath;
                o.CertificateValidityDays = options.CertificateValidityDays;
            })
            .ValidateOnStart();
        services.AddSingleton<IValidateOptions<HttpsOptions>, HttpsOptionsValidator>();
        services.AddSingleton(certificate);
        services.AddSingleton<HostCertificateRecords>();
        services.AddHostedService(sp => sp.GetRequiredService<HostCertificateRecords>());
        services.AddHostedService<HttpsOnlyWatch>();
        return services;
    }
}
