using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Corral.Api.Https;

public static class HttpsServiceCollectionExtensions
{
    /// <summary>
    /// The host's HTTPS service around <see cref="ApiServiceCollectionExtensions.AddXenApi"/>: its certificate, its
    /// <c>Certificate</c> record kept in the pool database, and its <c>https_only</c> applied to the HTTP port. Kestrel's
    /// listeners come from <see cref="XenApiListeners.ListenXenApi"/>. With <paramref name="subjects"/>, the certificate
    /// can be replaced over the API (<see cref="ServerCertificateMethods"/>).
    /// </summary>
    public static IServiceCollection AddXenApiHttps(this IServiceCollection services, HttpsOptions options, HostCertificate certificate,
        HostCertificateSubjects? subjects = null)
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
        if (subjects is not null)
        {
            // What a reset certificate names; without it (a test host) the certificate cannot be replaced.
            services.AddSingleton(subjects);
            services.AddSingleton<Dispatch.IApiMethodProvider, ServerCertificateMethods>();
        }

        services.AddSingleton<HostCertificateRecords>();
        services.AddHostedService(sp => sp.GetRequiredService<HostCertificateRecords>());
        services.AddHostedService<HttpsOnlyWatch>();
        return services;
    }
}
