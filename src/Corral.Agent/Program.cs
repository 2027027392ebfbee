using Corral.Agent.HighAvailability;
using Corral.Agent.Hosting;
using Corral.Agent.Membership;
using Corral.Agent.Metrics;
using Corral.Agent.Networking;
using Corral.Agent.Operations;
using Corral.Agent.Storage;
using Corral.Agent.Vms;
using Corral.Api;
using Corral.Api.Dispatch;
using Corral.Api.Http;
using Corral.Api.Https;
using Corral.Api.Metrics;
using Corral.Api.Methods;
using Corral.Api.Pool;
using Corral.Api.Sessions;
using Corral.Auth.Ldap;
using Corral.Hypervisor.Qemu;
using Corral.Leases.Sanlock;
using Corral.Networking;
using Corral.PoolDatabase.Etcd;
using Corral.PoolDatabase.Etcd.Membership;
using Corral.Storage;
using Corral.Storage.Nfs;
using Corral.WebConsole.Consoles;
using Corral.WebConsole.Hosting;
using Microsoft.Extensions.Options;

// The agent runs in generations: joining, leaving or recovering a pool changes which pool database this host uses,
// so the agent stops its services, changes its etcd membership (MembershipTransitionRunner), and starts them again.
// host.restart_agent starts a new generation too (taking over the liveness lease), host.reboot one after restarting
// the host's etcd member, and host.shutdown ends the last one after stopping it.
using var loggerFactory = LoggerFactory.Create(b => b.AddSimpleConsole(o =>
{
    o.SingleLine = true;
    o.TimestampFormat = "HH:mm:ss.fff ";
}));
using var lifecycle = new AgentLifecycle(loggerFactory.CreateLogger<AgentLifecycle>());
var startupLogger = loggerFactory.CreateLogger("Corral.Agent.Membership");
using var stopping = new CancellationTokenSource();
using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, _ => stopping.Cancel());

// The host's recent performance data outlives the agent's generations: a pool join does not blank its charts.
var performance = new PerformanceHistory();

// How the last generation ended: whether another starts, and whether this host's etcd member stops first.
var ended = AgentStop.Exit;
do
{
    // The content root is the program's own directory, not the working directory: under systemd (and nsenter) that is
    // "/", and the host's configuration reload would then watch the whole file system, /proc included, recursively
    // (inotify), which kept a core busy.
    var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
    AgentLogging.AddDefaults(builder.Configuration);
    builder.Logging.AddSimpleConsole(o =>
    {
        o.SingleLine = true;
        o.TimestampFormat = "HH:mm:ss.fff ";
    });

    // Checked before anything is written: a bad setting ends the agent with a message naming it (exit status 78).
    StartupSettings settings;
    try
    {
        settings = StartupSettings.Read(builder.Configuration);
    }
    catch (OptionsValidationException refused)
    {
        return StartupSettings.Refuse(loggerFactory.CreateLogger<StartupSettings>(), refused);
    }

    var agentSection = builder.Configuration.GetSection("Corral:Agent");
    var agent = settings.Agent;
    var identity = HostIdentity.LoadOrCreate(agent.StateDirectory);
    var etcd = settings.Etcd;
    // The pool's CA and this host's etcd certificate live with the host's other secrets.
    var etcdCertificates = etcd.CertificateDirectory.Length > 0 ? etcd.CertificateDirectory
        : Path.Combine(agent.StateDirectory, Corral.PoolDatabase.Etcd.Tls.EtcdTlsFiles.DirectoryName);
    var apiOptions = new ApiOptions { HostRef = identity.Ref, StateDirectory = agent.StateDirectory };
    builder.Configuration.GetSection("Corral:Api").Bind(apiOptions);

    // HTTPS with the host's own certificate, made at its first start (and again when its name or address changed).
    var https = settings.Https;
    https.CertificatePath = https.CertificatePathIn(agent.StateDirectory);
    var subjects = HostCertificateSubjects.For(agent.HostName, agent.Address);
    var certificate = HostCertificateFile.LoadOrCreate(https.CertificatePath, subjects,
        https.CertificateValidityDays, TimeProvider.System, loggerFactory.CreateLogger("Corral.Api.Https"));
    builder.WebHost.ConfigureKestrel(kestrel => kestrel.ListenXenApi(https, certificate));

    MembershipTransitionRunner? runner = null;
    var endpoints = etcd.Endpoints;
    if (etcd.Member.Enabled)
    {
        runner = new MembershipTransitionRunner(etcd.Member, etcd.Endpoints.Split(',', StringSplitOptions.RemoveEmptyEntries), apiOptions,
            new Corral.PoolDatabase.Etcd.Tls.EtcdTlsFiles(etcdCertificates), startupLogger);
        // A membership change that fails half-way (a peer not answering yet) is retried from its persisted stage.
        var ready = false;
        while (!ready && !stopping.IsCancellationRequested)
        {
            try
            {
                await runner.RunAsync(stopping.Token);
                ready = true;
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex)
            {
                startupLogger.LogError(ex, "Preparing this host's etcd member failed; retrying");
                await Task.Delay(TimeSpan.FromSeconds(2), CancellationToken.None);
            }
        }

        if (!ready)
        {
            break;
        }

        endpoints = string.Join(',', runner.Endpoints);
    }

    builder.Services.Configure<AgentOptions>(agentSection);
    builder.Services.Configure<PoolDefaultsOptions>(builder.Configuration.GetSection("Corral:PoolDefaults"));
    builder.Services.AddSingleton(identity);
    builder.Services.AddSingleton(lifecycle);
    builder.Services.AddEtcdPoolDatabase(o =>
    {
        builder.Configuration.GetSection("Corral:Etcd").Bind(o);
        o.Endpoints = endpoints;
        o.CertificateDirectory = etcd.Member.Enabled ? etcdCertificates : etcd.CertificateDirectory;
    });
    builder.Services.AddQemuHypervisor(o =>
    {
        builder.Configuration.GetSection("Corral:Qemu").Bind(o);
        o.StateDirectory = string.IsNullOrEmpty(o.StateDirectory) ? Path.Combine(agent.StateDirectory, "qemu") : o.StateDirectory;
        // Migration streams and NBD exports take TLS with the host's certificate of the pool's CA, its etcd one.
        var poolTls = new Corral.PoolDatabase.Etcd.Tls.EtcdTlsFiles(etcdCertificates);
        o.TlsCaCertificateFile = o.TlsCaCertificateFile.Length > 0 ? o.TlsCaCertificateFile : poolTls.CaCertificateFile;
        o.TlsCertificateFile = o.TlsCertificateFile.Length > 0 ? o.TlsCertificateFile : poolTls.CertificateFile;
        o.TlsKeyFile = o.TlsKeyFile.Length > 0 ? o.TlsKeyFile : poolTls.KeyFile;
        o.TlsRevocationListFile = o.TlsRevocationListFile.Length > 0 ? o.TlsRevocationListFile : poolTls.RevocationListFile;
    });
    // VM leases on shared storage, through the host's sanlock daemon (Corral:Sanlock).
    builder.Services.AddVmLeases(builder.Configuration.GetSection(SanlockOptions.Section));

    builder.Services.AddXenApi(o =>
    {
        o.HostRef = identity.Ref;
        o.StateDirectory = agent.StateDirectory;
        builder.Configuration.GetSection("Corral:Api").Bind(o);
    });
    builder.Services.Configure<RetentionOptions>(builder.Configuration.GetSection("Corral:Api:Retention"));
    builder.Services.Configure<Corral.Api.Http.ClientLimitOptions>(builder.Configuration.GetSection("Corral:Api:ClientLimits"));
    builder.Services.Configure<Corral.Api.Messages.MessageOptions>(builder.Configuration.GetSection("Corral:Api:Messages"));
    builder.Services.Configure<Corral.Api.Audit.AuditOptions>(builder.Configuration.GetSection("Corral:Api:Audit"));
    builder.Services.AddXenApiHttps(https, certificate, subjects);
    builder.Services.AddLdapDirectory();
    builder.Services.AddOptions<Corral.Auth.Ldap.DirectoryTlsOptions>().Bind(builder.Configuration.GetSection("Corral:Auth:Tls"))
        .PostConfigure<IOptions<ApiOptions>>((tls, api) =>
        {
            // By default, the pool's trusted CA certificates (pool.install_ca_certificate), as xapi's AD plugin trusts them.
            if (tls.TrustedCertificatesDirectory.Length == 0 && api.Value.StateDirectory.Length > 0)
            {
                tls.TrustedCertificatesDirectory = Path.Combine(api.Value.StateDirectory, Corral.Api.Https.TrustedCaDirectory.DirectoryName);
            }
        });
    builder.Services.Configure<Corral.Auth.Ldap.ActiveDirectoryOptions>(builder.Configuration.GetSection("Corral:Auth:ActiveDirectory"));
    if (runner is not null)
    {
        builder.Services.AddSingleton(runner);
        builder.Services.AddSingleton<IPoolMembership, PoolMembership>();
        builder.Services.AddSingleton<IApiMethodProvider, PoolMembershipMethods>();
        builder.Services.AddHostedService<EtcdMemberSupervisor>();
        builder.Services.AddOptions<PoolDatabaseCareOptions>().Bind(builder.Configuration.GetSection("Corral:Etcd:Care")).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<PoolDatabaseCareOptions>, ProblemsValidation<PoolDatabaseCareOptions>>();
        builder.Services.AddHostedService<PoolDatabaseCaretaker>();
    }

    // NFS SRs are reached through libnfs and QEMU's nfs block driver, iSCSI ones through libiscsi's tools and QEMU's
    // iscsi driver, their extents allocated in the pool database (docs/storage.md).
    // ISO libraries on SMB shares are mounted in userspace (smbnetfs), under the state directory (docs/storage.md).
    builder.Services.AddSingleton<IShareMounts>(sp => new Corral.Storage.Smb.SmbNetFsMounts(Path.Combine(agent.StateDirectory, "sr-mount"),
        sp.GetRequiredService<ILogger<Corral.Storage.Smb.SmbNetFsMounts>>()));
    builder.Services.AddSingleton(sp => new SrDrivers([new FileSrDriver(), new IsoSrDriver(sp.GetRequiredService<IShareMounts>(), new NfsIsoLibraries()), new NfsSrDriver(),
        new Corral.Storage.Iscsi.IscsiSrDriver(sp.GetRequiredService<Corral.PoolDatabase.IPoolDatabase>)]));
    builder.Services.AddSingleton<BridgeNetworking>();
    builder.Services.AddSingleton<VmDevices>();
    builder.Services.AddSingleton<GuestMetricsWriter>();
    builder.Services.AddSingleton<VmSupervisor>();
    builder.Services.AddHostedService<VmNvram>();
    builder.Services.AddHostedService<VmVtpm>();
    builder.Services.AddSingleton<HostRegistration>();
    builder.Services.AddSingleton<MigrationTlsIdentity>();
    builder.Services.AddSingleton<SharedSrPlugs>();
    builder.Services.AddSingleton<HostLiveness>();
    builder.Services.AddHostedService(sp => sp.GetRequiredService<HostLiveness>());
    builder.Services.AddSingleton<VmOperationHandler>();
    builder.Services.AddSingleton<IHostOperationHandler>(sp => sp.GetRequiredService<VmOperationHandler>());
    builder.Services.AddSingleton<IHostOperationHandler, MigrationHandler>();
    builder.Services.AddSingleton<EvacuationHandler>();
    builder.Services.AddSingleton<IHostOperationHandler>(sp => sp.GetRequiredService<EvacuationHandler>());
    builder.Services.AddSingleton<EtcdQuorum>();
    builder.Services.AddSingleton<IHostOperationHandler, StorageOperationHandler>();
    builder.Services.AddSingleton<IHostOperationHandler, HostPowerHandler>();
    // The pool's credentials (secret, this host's etcd certificate and its record, the revocation list) kept current.
    var poolTlsHost = etcd.Member.Enabled ? new PoolTlsHost(new Corral.PoolDatabase.Etcd.Tls.EtcdTlsFiles(etcdCertificates), etcd.Member) : null;
    builder.Services.AddSingleton(sp => ActivatorUtilities.CreateInstance<PoolTlsSync>(sp, poolTlsHost is null ? [] : [poolTlsHost]));
    builder.Services.AddHostedService(sp => sp.GetRequiredService<PoolTlsSync>());
    builder.Services.AddSingleton<IHostOperationHandler>(sp => ActivatorUtilities.CreateInstance<CertificateRefreshHandler>(sp, poolTlsHost is null ? [] : [poolTlsHost]));
    builder.Services.AddSingleton<IHostOperationHandler, DeviceHotplugHandler>();
    builder.Services.AddSingleton<SnapshotVolumes>();
    builder.Services.AddSingleton<RevertSteps>();
    builder.Services.AddSingleton<IHostOperationHandler, SnapshotHandler>();
    builder.Services.AddSingleton<IHostOperationHandler, LiveResizeHandler>();
    builder.Services.AddSingleton<SrCatalog>();
    builder.Services.AddSingleton<IHostOperationHandler, SrConnectionHandler>();
    builder.Services.AddHostedService<HostOperationWorker>();
    builder.Services.AddHostedService<PoolDefaults>();
    builder.Services.AddHostNetworking(builder.Configuration);
    builder.Services.AddHostedService<MasterElection>();
    // HA's timing budget is refused at start, with the inequality it breaks, rather than found unsafe in a failure.
    builder.Services.AddOptions<HaOptions>().Bind(builder.Configuration.GetSection("Corral:Ha"))
        .ValidateOnStart();
    builder.Services.AddSingleton<IValidateOptions<HaOptions>, HaOptionsValidation>();
    // The lease's safety margin is part of HA's budget, checked with it; the lease store takes it from there.
    builder.Services.AddOptions<EtcdOptions>().PostConfigure<IOptions<HaOptions>>((o, ha) => o.LeaseSafetyMargin = ha.Value.LeaseSafetyMargin);
    builder.Services.AddSingleton(TimeProvider.System);
    builder.Services.AddSingleton<FenceAgents>();
    builder.Services.AddSingleton<IHostPowerControl>(sp => sp.GetRequiredService<FenceAgents>());
    builder.Services.AddSingleton<IApiMethodProvider, HostPowerMethods>();
    builder.Services.AddSingleton<IApiMethodProvider, PoolDatabaseSyncMethods>();
    builder.Services.AddSingleton<StatefileLocator>();
    builder.Services.AddSingleton<StorageHeartbeat>();
    builder.Services.AddHostedService(sp => sp.GetRequiredService<StorageHeartbeat>());
    builder.Services.AddHostedService<FenceDaemonLink>();
    builder.Services.AddHostedService<SelfFence>();
    builder.Services.AddSingleton<PoolRecoveryWorld>();
    builder.Services.AddHostedService<HaCoordinator>();
    builder.Services.AddSingleton<PoolMasterFenceWorld>();
    builder.Services.AddHostedService<MasterFenceWatch>();
    builder.Services.AddSingleton<IRunningVms>(sp => sp.GetRequiredService<VmSupervisor>());
    builder.Services.AddHostedService<VmConsoleRecords>();
    builder.Services.AddWebConsole(o =>
    {
        builder.Configuration.GetSection("Corral:WebConsole").Bind(o);
        o.OwnAddress ??= (agentSection.Get<AgentOptions>() ?? new AgentOptions()).Address;
    });
    builder.Services.AddSingleton(performance);
    builder.Services.AddHostedService<PerformanceSampler>();

    // A generation's processes and sockets (QMP takes one client at a time) are released before the next one starts;
    // after host.restart_agent the next one resumes this one's liveness lease within its TTL (LivenessHandover).
    await using (var app = builder.Build())
    {
        lifecycle.Attach(app.Lifetime);
        using var stop = stopping.Token.Register(() => app.Lifetime.StopApplication());
        app.UseHttpsOnlyGate();
        app.UseWebConsole();
        app.MapXenApi();
        app.MapRrdUpdates();
        app.MapAuditLog();
        app.MapXva();
        try
        {
            await app.RunAsync();
        }
        catch (OptionsValidationException refused)
        {
            // The settings validated at start (ValidateOnStart: HA's timing budget, sanlock's, the pool database's care).
            return StartupSettings.Refuse(loggerFactory.CreateLogger<StartupSettings>(), refused);
        }

        ended = lifecycle.TakeStop();
    }

    if (runner is not null && ended is AgentStop.PowerOff or AgentStop.Reboot)
    {
        // As the machine powering off would: the host's copy of the pool database stops with it (its data stays).
        await runner.StopMemberAsync(CancellationToken.None);
    }
}
while (AgentLifecycle.StartsAgain(ended) && !stopping.IsCancellationRequested);

return 0;
