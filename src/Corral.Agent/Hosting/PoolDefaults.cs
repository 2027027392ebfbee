using Corral.Agent.Networking;
using Corral.Agent.Storage;
using Corral.Agent.Vms;
using Corral.Model;
using Corral.PoolDatabase;
using Corral.Storage;
using Microsoft.Extensions.Options;

namespace Corral.Agent.Hosting;

/// <summary>Settings for what a new pool starts with.</summary>
public sealed class PoolDefaultsOptions
{
    /// <summary>The bridge of the pool-wide VM network (XenServer's is xenbr0).</summary>
    public string VmBridge { get; set; } = "xenbr0";
}

/// <summary>
/// What every pool has from its first minute, as XenServer's installer provides: the pool-wide VM network, and the
/// template library with Corral's built-in templates (when guest images are configured).
/// </summary>
public sealed class PoolDefaults(
    IPoolDatabase database,
    HostIdentity identity,
    HostLiveness liveness,
    IOptions<AgentOptions> agentOptions,
    IOptions<PoolDefaultsOptions> options,
    ILogger<PoolDefaults> logger) : BackgroundService
{
    public const string LibraryName = "Corral template library";
    public const string TemplateImageKey = "corral-template-image";

    /// <summary>The built-in templates: name, image file, device model.</summary>
    public static readonly (string Name, string Image, string Devices, string Description)[] Templates =
    [
        ("Corral Linux test", "corral-linux-test.qcow2", "virtio", "Small Linux guest with virtio devices and the Corral guest agent"),
        ("Corral Linux test (no tools)", "corral-linux-notools.qcow2", "emulated", "Small Linux guest with emulated devices only and no guest agent"),
    ];

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await liveness.Registered.WaitAsync(stoppingToken);
            var pool = (await database.GetAllAsync(XenClasses.Pool, stoppingToken)).Single();
            if (pool.Get(XenApi.Pool.Master) != identity.Ref)
            {
                return;
            }

            await EnsureNetworkAsync(stoppingToken);
            await EnsureInstallTemplatesAsync(stoppingToken);
            await EnsureTemplatesAsync(stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        catch (Exception ex)
        {
            logger.LogError(ex, "Could not set up the pool's defaults");
        }
    }

    /// <summary>
    /// The network of the VM bridge, unless a host's scan of its cards made it already (the same reference: whichever
    /// commits first wins, the other finds it). Named as xapi names a card's network: xenbrN's after ethN.
    /// </summary>
    private async Task EnsureNetworkAsync(CancellationToken cancellationToken)
    {
        var bridge = options.Value.VmBridge;
        var networks = await database.GetAllAsync(XenClasses.Network, cancellationToken);
        if (networks.Any(n => n.Get(XenApi.Network.Bridge) == bridge))
        {
            return;
        }

        var tx = new PoolTransaction();
        PifPlan.CreateNetwork(tx, bridge);
        if (!await database.TryCommitAsync(tx, cancellationToken))
        {
            logger.LogDebug("The network of bridge {Bridge} was made by a scan of a host's cards first", bridge);
        }
    }

    /// <summary>XenServer's templates for installing from media (<see cref="InstallTemplates"/>), each made once, by its uuid.</summary>
    private async Task EnsureInstallTemplatesAsync(CancellationToken cancellationToken)
    {
        var vms = await database.GetAllAsync(XenClasses.VM, cancellationToken);
        var tx = new PoolTransaction();
        foreach (var template in InstallTemplates.All.Where(t => !vms.Any(v => v.Uuid == t.Uuid)))
        {
            var metrics = tx.Create(XenClasses.VMMetricsSchema);
            InstallTemplates.Fill(tx.Create(XenClasses.VMSchema), template, metrics.Ref);
        }

        if (!tx.IsEmpty)
        {
            await database.CommitAsync(tx, cancellationToken);
            logger.LogInformation("Installed XenServer's templates for installing from media");
        }
    }

    private async Task EnsureTemplatesAsync(CancellationToken cancellationToken)
    {
        var images = agentOptions.Value.GuestImageDirectory;
        var libraryDirectory = agentOptions.Value.TemplateLibraryDirectory;
        if (string.IsNullOrEmpty(images) || string.IsNullOrEmpty(libraryDirectory))
        {
            return;
        }

        Directory.CreateDirectory(libraryDirectory);
        var srs = await database.GetAllAsync(XenClasses.SR, cancellationToken);
        var library = srs.FirstOrDefault(s => s.Get(XenApi.SR.OtherConfig).ContainsKey("corral-template-library"));
        var tx = new PoolTransaction();
        if (library is null)
        {
            library = tx.Create(XenClasses.SRSchema);
            library.Set(XenApi.SR.NameLabel, LibraryName);
            library.Set(XenApi.SR.NameDescription, "Disks of Corral's built-in templates");
            library.Set(XenApi.SR.Type, FileSrDriver.TypeName);
            library.Set(XenApi.SR.ContentType, "user");
            library.Set(XenApi.SR.Shared, true);
            library.Set(XenApi.SR.OtherConfig, new Dictionary<string, string> { ["corral-template-library"] = "true" });
            // Shared like any pool SR: every host gets a PBD (hosts joining later plug it themselves).
            foreach (var host in await database.GetAllAsync(XenClasses.Host, cancellationToken))
            {
                var pbd = tx.Create(XenClasses.PBDSchema);
                pbd.Set(XenApi.PBD.Host, host.Ref);
                pbd.Set(XenApi.PBD.SR, library.Ref);
                pbd.Set(XenApi.PBD.DeviceConfig, new Dictionary<string, string> { ["location"] = libraryDirectory });
                pbd.Set(XenApi.PBD.CurrentlyAttached, true);
            }
            await database.CommitAsync(tx, cancellationToken);
            library = await database.GetAsync(XenClasses.SR, library.Ref, cancellationToken);
        }

        var vms = await database.GetAllAsync(XenClasses.VM, cancellationToken);
        var network = (await database.GetAllAsync(XenClasses.Network, cancellationToken))
            .FirstOrDefault(n => n.Get(XenApi.Network.Bridge) == options.Value.VmBridge);
        foreach (var (name, image, devices, description) in Templates)
        {
            var source = Path.Combine(images, image);
            if (vms.Any(v => v.Get(XenApi.VM.IsATemplate) && v.Get(XenApi.VM.NameLabel) == name) || !File.Exists(source))
            {
                continue;
            }

            var vdiUuid = OpaqueRef.NewUuid();
            var location = vdiUuid + ".qcow2";
            var info = await new FileSrDriver().CopyAsync(source, libraryDirectory, vdiUuid, cancellationToken);
            var t = new PoolTransaction();
            var vdi = t.Create(XenClasses.VDISchema);
            vdi.Set(XenApi.VDI.Uuid, vdiUuid);
            vdi.Set(XenApi.VDI.NameLabel, name + " disk");
            vdi.Set(XenApi.VDI.SR, library.Ref);
            vdi.Set(XenApi.VDI.Location, location);
            vdi.Set(XenApi.VDI.VirtualSize, info.VirtualSize);
            vdi.Set(XenApi.VDI.PhysicalUtilisation, info.PhysicalUtilisation);
            vdi.Set(XenApi.VDI.Type, VdiType.System);
            vdi.Set(XenApi.VDI.Managed, true);
            vdi.Set(XenApi.VDI.OtherConfig, new Dictionary<string, string> { [TemplateImageKey] = image });
            var metrics = t.Create(XenClasses.VMMetricsSchema);
            var template = t.Create(XenClasses.VMSchema);
            template.Set(XenApi.VM.NameLabel, name);
            template.Set(XenApi.VM.NameDescription, description);
            template.Set(XenApi.VM.IsATemplate, true);
            template.Set(XenApi.VM.IsDefaultTemplate, true);
            template.Set(XenApi.VM.PowerState, VmPowerState.Halted);
            template.Set(XenApi.VM.MemoryStaticMax, 256L * 1024 * 1024);
            template.Set(XenApi.VM.MemoryDynamicMax, 256L * 1024 * 1024);
            template.Set(XenApi.VM.MemoryDynamicMin, 256L * 1024 * 1024);
            template.Set(XenApi.VM.MemoryStaticMin, 128L * 1024 * 1024);
            template.Set(XenApi.VM.MemoryTarget, 256L * 1024 * 1024);
            template.Set(XenApi.VM.VCPUsMax, 1L);
            template.Set(XenApi.VM.VCPUsAtStartup, 1L);
            template.Set(XenApi.VM.HVMBootPolicy, "BIOS order");
            template.Set(XenApi.VM.HVMBootParams, new Dictionary<string, string> { ["order"] = "cd" });
            template.Set(XenApi.VM.Platform, new Dictionary<string, string> { [VmOperationHandler.DevicesPlatformKey] = devices });
            template.Set(XenApi.VM.OtherConfig, new Dictionary<string, string> { ["default_template"] = "true" });
            template.Set(XenApi.VM.Metrics, metrics.Ref);
            var vbd = t.Create(XenClasses.VBDSchema);
            vbd.Set(XenApi.VBD.VM, template.Ref);
            vbd.Set(XenApi.VBD.VDI, vdi.Ref);
            vbd.Set(XenApi.VBD.Userdevice, "0");
            vbd.Set(XenApi.VBD.Bootable, true);
            vbd.Set(XenApi.VBD.Mode, VbdMode.RW);
            vbd.Set(XenApi.VBD.Type, VbdType.Disk);
            if (network is not null)
            {
                var vif = t.Create(XenClasses.VIFSchema);
                vif.Set(XenApi.VIF.VM, template.Ref);
                vif.Set(XenApi.VIF.Network, network.Ref);
                vif.Set(XenApi.VIF.Device, "0");
                vif.Set(XenApi.VIF.MAC, "");
                vif.Set(XenApi.VIF.MACAutogenerated, true);
            }

            await database.CommitAsync(t, cancellationToken);
            logger.LogInformation("Installed template '{Template}'", name);
        }

        _ = typeof(StorageOperationHandler);
    }
}
