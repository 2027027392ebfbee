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
    public const string NetworkName = "Pool-wide network associated with eth0";
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
            await liveness.Registered.WaitAsync(stoppingToken).ConfigureAwait(false);
            var pool = (await database.GetAllAsync(XenClasses.Pool, stoppingToken).ConfigureAwait(false)).Single();
            if (pool.GetString("master") != identity.Ref)
            {
                return;
            }

            await EnsureNetworkAsync(stoppingToken).ConfigureAwait(false);
            await EnsureTemplatesAsync(stoppingToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        catch (Exception ex)
        {
            logger.LogError(ex, "Could not set up the pool's defaults");
        }
    }

    private async Task EnsureNetworkAsync(CancellationToken cancellationToken)
    {
        var networks = await database.GetAllAsync(XenClasses.Network, cancellationToken).ConfigureAwait(false);
        if (networks.Any(n => n.GetString("bridge") == options.Value.VmBridge))
        {
            return;
        }

        var tx = new PoolTransaction();
        tx.Create(XenClasses.NetworkSchema, new Dictionary<string, object?>
        {
            ["name_label"] = NetworkName,
            ["bridge"] = options.Value.VmBridge,
            ["MTU"] = 1500L,
        });
        await database.CommitAsync(tx, cancellationToken).ConfigureAwait(false);
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
        var srs = await database.GetAllAsync(XenClasses.SR, cancellationToken).ConfigureAwait(false);
        var library = srs.FirstOrDefault(s => s.GetStringMap("other_config").ContainsKey("corral-template-library"));
        var tx = new PoolTransaction();
        if (library is null)
        {
            library = tx.Create(XenClasses.SRSchema, new Dictionary<string, object?>
            {
                ["name_label"] = LibraryName,
                ["name_description"] = "Disks of Corral's built-in templates",
                ["type"] = FileSrDriver.TypeName,
                ["content_type"] = "user",
                ["shared"] = true,
                ["other_config"] = new Dictionary<string, object?> { ["corral-template-library"] = "true" },
            });
            // Shared like any pool SR: every host gets a PBD (hosts joining later plug it themselves).
            foreach (var host in await database.GetAllAsync(XenClasses.Host, cancellationToken).ConfigureAwait(false))
            {
                tx.Create(XenClasses.PBDSchema, new Dictionary<string, object?>
                {
                    ["host"] = host.Ref,
                    ["SR"] = library.Ref,
                    ["device_config"] = new Dictionary<string, object?> { ["location"] = libraryDirectory },
                    ["currently_attached"] = true,
                });
            }
            await database.CommitAsync(tx, cancellationToken).ConfigureAwait(false);
            library = await database.GetAsync(XenClasses.SR, library.Ref, cancellationToken).ConfigureAwait(false);
        }

        var vms = await database.GetAllAsync(XenClasses.VM, cancellationToken).ConfigureAwait(false);
        var network = (await database.GetAllAsync(XenClasses.Network, cancellationToken).ConfigureAwait(false))
            .FirstOrDefault(n => n.GetString("bridge") == options.Value.VmBridge);
        foreach (var (name, image, devices, description) in Templates)
        {
            var source = Path.Combine(images, image);
            if (vms.Any(v => v.GetBool("is_a_template") && v.GetString("name_label") == name) || !File.Exists(source))
            {
                continue;
            }

            var vdiUuid = OpaqueRef.NewUuid();
            var location = vdiUuid + ".qcow2";
            var info = await new FileSrDriver().CopyAsync(source, libraryDirectory, vdiUuid, cancellationToken).ConfigureAwait(false);
            var t = new PoolTransaction();
            var vdi = t.Create(XenClasses.VDISchema, new Dictionary<string, object?>
            {
                ["uuid"] = vdiUuid,
                ["name_label"] = name + " disk",
                ["SR"] = library.Ref,
                ["location"] = location,
                ["virtual_size"] = info.VirtualSize,
                ["physical_utilisation"] = info.PhysicalUtilisation,
                ["type"] = "system",
                ["managed"] = true,
                ["other_config"] = new Dictionary<string, object?> { [TemplateImageKey] = image },
            });
            var metrics = t.Create(XenClasses.VMMetricsSchema);
            var template = t.Create(XenClasses.VMSchema, new Dictionary<string, object?>
            {
                ["name_label"] = name,
                ["name_description"] = description,
                ["is_a_template"] = true,
                ["is_default_template"] = true,
                ["power_state"] = "Halted",
                ["memory_static_max"] = 256L * 1024 * 1024,
                ["memory_dynamic_max"] = 256L * 1024 * 1024,
                ["memory_dynamic_min"] = 256L * 1024 * 1024,
                ["memory_static_min"] = 128L * 1024 * 1024,
                ["memory_target"] = 256L * 1024 * 1024,
                ["VCPUs_max"] = 1L,
                ["VCPUs_at_startup"] = 1L,
                ["HVM_boot_policy"] = "BIOS order",
                ["HVM_boot_params"] = new Dictionary<string, object?> { ["order"] = "cd" },
                ["platform"] = new Dictionary<string, object?> { [VmOperationHandler.DevicesPlatformKey] = devices },
                ["other_config"] = new Dictionary<string, object?> { ["default_template"] = "true" },
                ["metrics"] = metrics.Ref,
            });
            t.Create(XenClasses.VBDSchema, new Dictionary<string, object?>
            {
                ["VM"] = template.Ref,
                ["VDI"] = vdi.Ref,
                ["userdevice"] = "0",
                ["bootable"] = true,
                ["mode"] = "RW",
                ["type"] = "Disk",
            });
            if (network is not null)
            {
                t.Create(XenClasses.VIFSchema, new Dictionary<string, object?>
                {
                    ["VM"] = template.Ref,
                    ["network"] = network.Ref,
                    ["device"] = "0",
                    ["MAC"] = "",
                    ["MAC_autogenerated"] = true,
                });
            }

            await database.CommitAsync(t, cancellationToken).ConfigureAwait(false);
            logger.LogInformation("Installed template '{Template}'", name);
        }

        _ = typeof(StorageOperationHandler);
    }
}
