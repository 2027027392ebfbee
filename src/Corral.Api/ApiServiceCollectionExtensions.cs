using Corral.Api.Dispatch;
using Corral.Api.Events;
using Corral.Api.Messages;
using Corral.Api.Methods;
using Corral.Api.Operations;
using Corral.Api.Pool;
using Corral.Api.Sessions;
using Corral.Api.Tasks;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Corral.Api;

public static class ApiServiceCollectionExtensions
{
    /// <summary>Registers the XenAPI: dispatcher, sessions, tasks, events and every class's messages.</summary>
    public static IServiceCollection AddXenApi(this IServiceCollection services, Action<ApiOptions>? configure = null)
    {
        var options = services.AddOptions<ApiOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        options.Validate(o => o.MaxRpcRequestBytes >= 4096, "ApiOptions.MaxRpcRequestBytes must be at least 4096 (a login alone takes a few hundred bytes)")
            .Validate(o => o.MaxRpcNesting is >= 16 and <= 256, "ApiOptions.MaxRpcNesting must be between 16 (a XenAPI map of maps) and 256 (deeper only risks the stack)")
            .Validate(o => o.PasswordHashIterations >= 10_000, "ApiOptions.PasswordHashIterations must be at least 10,000 (OWASP asks 600,000, the default)")
            .Validate(o => o.LoginFailuresPerUser >= 1 && o.LoginFailuresPerSource >= 1 && o.LoginFailureForgivenAfter > TimeSpan.Zero,
                "ApiOptions.LoginFailuresPerUser and LoginFailuresPerSource must be at least 1, LoginFailureForgivenAfter positive")
            .Validate(o => o.ExternalSessionLifespan >= TimeSpan.FromMinutes(1) && o.ExternalSessionRevalidateEvery > TimeSpan.Zero
                    && o.ExternalSessionRevalidateEvery <= o.ExternalSessionLifespan,
                "ApiOptions.ExternalSessionLifespan must be at least a minute, ExternalSessionRevalidateEvery positive and no longer than it")
            .ValidateOnStart();

        services.AddOptions<MessageOptions>()
            .Validate(o => o.Limit > 0, "MessageOptions.Limit must be positive")
            .Validate(o => o.CollectEvery > TimeSpan.Zero, "MessageOptions.CollectEvery must be positive")
            .ValidateOnStart();
        services.AddOptions<Http.ClientLimitOptions>().ValidateOnStart();
        services.AddSingleton<Microsoft.Extensions.Options.IValidateOptions<Http.ClientLimitOptions>, ProblemsValidation<Http.ClientLimitOptions>>();
        services.AddSingleton<Http.ClientCallLimiter>();
        services.AddSingleton<Http.ClientConnectionCounter>();
        services.AddOptions<RetentionOptions>().ValidateOnStart();
        services.AddSingleton<Microsoft.Extensions.Options.IValidateOptions<RetentionOptions>, ProblemsValidation<RetentionOptions>>();
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton<LocalCredentials>();
        services.AddSingleton<LoginThrottle>();
        services.AddSingleton<VerifiedPasswords>();
        services.AddSingleton<Auth.ExternalAuth>();
        services.AddOptions<Audit.AuditOptions>().ValidateOnStart();
        services.AddSingleton<Microsoft.Extensions.Options.IValidateOptions<Audit.AuditOptions>, ProblemsValidation<Audit.AuditOptions>>();
        services.AddSingleton<Audit.AuditLog>();
        services.AddSingleton<Audit.AuditForwarder>();
        services.AddHostedService(sp => sp.GetRequiredService<Audit.AuditForwarder>());
        services.AddHostedService(sp => sp.GetRequiredService<Audit.AuditLog>());
        services.AddSingleton<SessionService>();
        services.AddSingleton<DirectorySessionRevalidation>();
        services.AddHostedService(sp => sp.GetRequiredService<DirectorySessionRevalidation>());
        services.AddSingleton<TaskService>();
        services.AddSingleton<EventHub>();
        services.AddHostedService(sp => sp.GetRequiredService<EventHub>());
        services.AddSingleton<MessageCollector>();
        services.AddHostedService(sp => sp.GetRequiredService<MessageCollector>());
        services.AddSingleton<PoolCollector>();
        services.AddHostedService(sp => sp.GetRequiredService<PoolCollector>());
        services.AddSingleton<HostOperationQueue>();
        services.AddSingleton<Placement>();
        services.AddSingleton<CertificateDistribution>();
        services.AddSingleton<HighAvailability.FailoverPlanning>();
        services.AddSingleton<VmStarter>();
        services.AddSingleton<AllowedOperations.OperationMarks>();
        services.AddHostedService<AllowedOperations.AllowedOperationsService>();
        services.AddSingleton<Migration.MigrationStarter>();
        services.AddSingleton<Migration.EvacuationPlanner>();
        services.AddSingleton<MasterState>();
        services.AddSingleton<Https.HttpsOnlyGate>();
        services.AddSingleton<PoolCertificateTrust>();
        services.TryAddSingleton<TlsVerification>();
        services.TryAddSingleton<RemoteHosts>();
        services.TryAddSingleton<HostForwarding>();
        services.AddSingleton<Devices.DeviceOperations>();
        services.AddSingleton<IApiMethodProvider, GenericClassMethods>();
        // Class providers come after the generic one so that their messages replace generic setters of the same name.
        services.AddSingleton<IApiMethodProvider, SessionMethods>();
        services.AddSingleton<IApiMethodProvider, TaskMethods>();
        services.AddSingleton<IApiMethodProvider, EventMethods>();
        services.AddSingleton<IApiMethodProvider, VmMethods>();
        services.AddSingleton<IApiMethodProvider, LiveResize.LiveResizeMethods>();
        services.AddSingleton<IApiMethodProvider, HostMethods>();
        services.AddSingleton<IApiMethodProvider, StorageMethods>();
        services.AddSingleton<IApiMethodProvider, SnapshotMethods>();
        services.AddSingleton<IApiMethodProvider, NetworkMethods>();
        services.AddSingleton<IApiMethodProvider, PifMethods>();
        services.AddSingleton<IApiMethodProvider, PifAddressMethods>();
        services.AddSingleton<IApiMethodProvider, PbdMethods>();
        services.AddSingleton<IApiMethodProvider, SrRecordMethods>();
        services.AddSingleton<IApiMethodProvider, VbdMethods>();
        services.AddSingleton<IApiMethodProvider, VifMethods>();
        services.AddSingleton<IApiMethodProvider, VtpmMethods>();
        services.AddSingleton<IApiMethodProvider, PoolMethods>();
        services.AddSingleton<IApiMethodProvider, MigrationMethods>();
        services.AddSingleton<IApiMethodProvider, EvacuationMethods>();
        services.AddSingleton<IApiMethodProvider, HaMethods>();
        services.AddSingleton<IApiMethodProvider, SystemMethods>();
        services.AddSingleton<IApiMethodProvider, AuditMethods>();
        services.AddSingleton<IApiMethodProvider, CaCertificateMethods>();
        services.AddSingleton<IApiMethodProvider, TlsVerificationMethods>();
        services.AddSingleton<VmProvisioning>();
        services.AddSingleton<Xva.XvaExporter>();
        services.AddSingleton<Xva.XvaImporter>();
        services.AddSingleton<Https.TrustedCaDirectory>();
        services.AddHostedService(sp => sp.GetRequiredService<Https.TrustedCaDirectory>());
        services.AddSingleton<IApiMethodProvider, AllowedOperations.AllowedOperationsMethods>();
        services.AddSingleton<IApiMethodProvider, RoleMethods>();
        services.AddSingleton<IApiMethodProvider, SubjectMethods>();
        services.AddSingleton<IApiMethodProvider, AuthMethods>();
        services.AddSingleton<IApiMethodProvider, MessageMethods>();
        services.AddSingleton<IApiMethodProvider, CertificateMethods>();
        services.AddSingleton<PoolSecretRotation>();
        services.AddSingleton<IApiMethodProvider, CertificateRotationMethods>();
        services.AddSingleton<ApiDispatcher>();
        return services;
    }
}
