using System.Globalization;
using Corral.Agent.Vms;
using Corral.Api.Methods;
using Corral.Model;

namespace Corral.Agent.Hosting;

/// <summary>
/// The templates a XenServer pool ships for installing an operating system from its media, with XenServer's names,
/// uuids and reference labels, and the settings its template generator gives them (xenserver/guest-templates-json):
/// memory (the minimum as <c>memory_static_min</c>, twice that for the rest), vCPUs, the boot order and firmware
/// (<c>HVM_boot_params</c>), the platform flags, the disk <c>VM.provision</c> makes (<c>other_config:disks</c>), the
/// install methods and the restrictions clients read (<c>recommendations</c>). They have no disks or network cards of
/// their own: <c>xe vm-install</c> provisions the disk on the SR it is given. Corral's device model follows what the
/// guest has drivers for: virtio for Linux, emulated devices (IDE, e1000) for Windows and unknown media.
/// </summary>
public static class InstallTemplates
{
    public sealed record Template(string Uuid, string ReferenceLabel, string Name, string Description, long MinMemory, long? DiskSize, bool DiskBootable,
        long Vcpus, IReadOnlyDictionary<string, string> BootParams, IReadOnlyDictionary<string, string> Platform,
        IReadOnlyDictionary<string, string> OtherConfig, string Recommendations);

    private const long GiB = 1L << 30;
    private const string LinuxDescription = "To use this template from the CLI, install your VM using vm-install, then set other-config-install-repository to the path to your network repository, e.g. http://<server>/<path> or nfs:server:/<path>";

    public static IReadOnlyList<Template> All { get; } = Build();

    private static List<Template> Build()
    {
        var linux = new (string Uuid, string Label, string Name, long Memory, long Disk, bool Uefi)[]
        {
            ("07d91aaa-43f7-430a-bf84-0edb6714df0f", "debian-12", "Debian Bookworm 12", 1 * GiB, 10 * GiB, true),
            ("acfeecf4-4007-412b-8f13-6d61a6aee5bd", "debian-11", "Debian Bullseye 11", GiB / 2, 10 * GiB, false),
            ("df1a0e64-3799-482b-aa9f-1ed713c7dac5", "ubuntu-22.04", "Ubuntu Jammy Jellyfish 22.04", 1 * GiB, 10 * GiB, true),
            ("ff1f3e17-84d9-4d72-962d-571c4ceb527b", "ubuntu-24.04", "Ubuntu Noble Numbat 24.04", 1 * GiB, 10 * GiB, true),
            ("6c91b878-5095-421e-a914-224b3bb1088c", "rhel-9", "Red Hat Enterprise Linux 9", 2 * GiB, 10 * GiB, true),
            ("1a647cf9-99c1-4e9c-b3b4-6b9989c530be", "rocky-9", "Rocky Linux 9", 2 * GiB, 15 * GiB, true),
            ("6ff2c2f1-92af-4396-b117-a9cc2cc76aa4", "alma-9", "AlmaLinux 9", 2 * GiB, 10 * GiB, true),
        };
        var windows = new (string Uuid, string Label, string Name, long Memory, long Disk, bool Bios, bool Client, bool Vtpm)[]
        {
            ("7774689b-4ca1-4dea-8545-dddd6b64c17f", "windows-10-64bit", "Windows 10 (64-bit)", 2 * GiB, 32 * GiB, true, true, false),
            ("1f8728f9-6354-4a68-adc3-222c34f2bb94", "windows-11", "Windows 11", 4 * GiB, 64 * GiB, false, true, true),
            ("d986ea98-09fa-4e9a-9ee6-e6c78119496f", "windows-server-2019-64bit", "Windows Server 2019 (64-bit)", 1 * GiB, 32 * GiB, true, false, false),
            ("1c33af1c-e919-418c-ad45-85d7d6fb604a", "windows-server-2022-64bit", "Windows Server 2022 (64-bit)", 1 * GiB, 32 * GiB, true, false, false),
            ("905ab443-e415-4d52-bfef-e14b147eac4e", "windows-server-2025", "Windows Server 2025", 2 * GiB, 64 * GiB, false, false, false),
        };

        var templates = new List<Template>
        {
            new("552bce37-51b2-445d-84f2-5f33fa112d7e", "other-install-media", "Other install media", "Template which allows VM installation from install media",
                GiB / 8, null, false, 1, Boot("cd", "bios"),
                Platform(("viridian", "true"), ("secureboot", "false"), (VmDevices.DevicesPlatformKey, "emulated")),
                Config(("install-methods", "cdrom")),
                Restrictions(128 * GiB, null, bios: true, uefi: true, secureBoot: true, vendorDevice: false, gpu: false, sriov: false)),
        };
        foreach (var (uuid, label, name, memory, disk, uefi) in linux)
        {
            templates.Add(new(uuid, label, name, LinuxDescription, memory, disk, true, 1, Boot("cdn", uefi ? "uefi" : "bios"),
                Platform(("vga", "std"), ("videoram", "8"), ("viridian", "false"), ("device_id", "0001"), ("secureboot", uefi ? "auto" : "false"),
                    (VmDevices.DevicesPlatformKey, "virtio")),
                Config(("linux_template", "true"), ("install-methods", "cdrom,nfs,http,ftp")),
                Restrictions(1536 * GiB, null, bios: true, uefi: uefi, secureBoot: uefi, vendorDevice: false, gpu: true, sriov: true)));
        }

        foreach (var (uuid, label, name, memory, disk, bios, client, vtpm) in windows)
        {
            var platform = new List<(string, string)>
            {
                ("cores-per-socket", "2"), ("device_id", "0002"), ("viridian", "true"), ("viridian_time_ref_count", "true"),
                ("viridian_reference_tsc", "true"), ("viridian_apic_assist", "true"), ("viridian_crash_ctl", "true"), ("viridian_stimer", "true"),
                ("secureboot", "auto"), ("vga", "std"), ("videoram", "8"), (VmDevices.DevicesPlatformKey, "emulated"),
            };
            if (client)
            {
                platform.Add(("acpi_laptop_slate", "1"));
            }

            if (vtpm)
            {
                platform.Add(("vtpm", "true"));
            }

            templates.Add(new(uuid, label, name,
                $"Clones of this template will automatically provision their storage when first booted and then reconfigure themselves with the optimal settings for {name}.",
                memory, disk, false, 2, Boot("cd", "uefi"), Platform([.. platform]), Config(("install-methods", "cdrom")),
                Restrictions(1536 * GiB, 2, bios: bios, uefi: true, secureBoot: true, vendorDevice: true, gpu: false, sriov: !client)));
        }

        return templates;
    }

    /// <summary>The provisioning request xe's vm-install points at its SR: one system disk, device 0.</summary>
    public static string DisksXml(long size, bool bootable) =>
        $"<provision><disk size=\"{size.ToString(CultureInfo.InvariantCulture)}\" sr=\"\" bootable=\"{(bootable ? "true" : "false")}\" type=\"system\" device=\"0\"/></provision>";

    private static Dictionary<string, string> Boot(string order, string firmware) =>
        new(StringComparer.Ordinal) { [BootOrder.OrderKey] = order, ["firmware"] = firmware };

    /// <summary>The platform flags every template starts from (nx, acpi, apic, pae, hpet), then the template's own.</summary>
    private static Dictionary<string, string> Platform(params (string Key, string Value)[] own)
    {
        var platform = new Dictionary<string, string>(StringComparer.Ordinal) { ["nx"] = "true", ["acpi"] = "1", ["apic"] = "true", ["pae"] = "true", ["hpet"] = "true" };
        foreach (var (key, value) in own)
        {
            platform[key] = value;
        }

        return platform;
    }

    private static Dictionary<string, string> Config(params (string Key, string Value)[] own) => own.ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);

    /// <summary>The restrictions XML XenServer's templates carry, in its generator's element order.</summary>
    private static string Restrictions(long memoryMax, int? vcpusMin, bool bios, bool uefi, bool secureBoot, bool vendorDevice, bool gpu, bool sriov)
    {
        static string Yes(bool value) => value ? "yes" : "no";
        var parts = new List<string> { $"<restriction field=\"memory-static-max\" max=\"{memoryMax.ToString(CultureInfo.InvariantCulture)}\"/>" };
        if (vcpusMin is { } min)
        {
            parts.Add($"<restriction field=\"vcpus-min\" min=\"{min.ToString(CultureInfo.InvariantCulture)}\"/>");
        }

        parts.Add("<restriction field=\"vcpus-max\" max=\"64\"/>");
        parts.Add($"<restriction field=\"has-vendor-device\" value=\"{(vendorDevice ? "true" : "false")}\"/>");
        if (gpu)
        {
            parts.Add("<restriction field=\"allow-gpu-passthrough\" value=\"1\"/>");
            parts.Add("<restriction field=\"allow-vgpu\" value=\"1\"/>");
        }

        if (sriov)
        {
            parts.Add("<restriction field=\"allow-network-sriov\" value=\"1\"/>");
        }

        parts.Add($"<restriction field=\"supports-bios\" value=\"{Yes(bios)}\"/>");
        parts.Add($"<restriction field=\"supports-uefi\" value=\"{Yes(uefi)}\"/>");
        parts.Add($"<restriction field=\"supports-secure-boot\" value=\"{Yes(secureBoot)}\"/>");
        parts.Add("<restriction property=\"number-of-vbds\" max=\"255\"/>");
        parts.Add("<restriction property=\"number-of-vifs\" max=\"7\"/>");
        return "<restrictions>" + string.Concat(parts) + "</restrictions>";
    }

    /// <summary>A template as a VM record of the pool (its uuid XenServer's), memory and vCPUs as XenServer sets them.</summary>
    public static void Fill(XenObject vm, Template template, string metricsRef)
    {
        ArgumentNullException.ThrowIfNull(vm);
        ArgumentNullException.ThrowIfNull(template);
        vm.Set(XenApi.VM.Uuid, template.Uuid);
        vm.Set(XenApi.VM.NameLabel, template.Name);
        vm.Set(XenApi.VM.NameDescription, template.Description);
        vm.Set(XenApi.VM.ReferenceLabel, template.ReferenceLabel);
        vm.Set(XenApi.VM.IsATemplate, true);
        vm.Set(XenApi.VM.IsDefaultTemplate, true);
        vm.Set(XenApi.VM.PowerState, VmPowerState.Halted);
        vm.Set(XenApi.VM.MemoryStaticMin, template.MinMemory);
        vm.Set(XenApi.VM.MemoryStaticMax, template.MinMemory * 2);
        vm.Set(XenApi.VM.MemoryDynamicMin, template.MinMemory * 2);
        vm.Set(XenApi.VM.MemoryDynamicMax, template.MinMemory * 2);
        vm.Set(XenApi.VM.MemoryTarget, template.MinMemory * 2);
        vm.Set(XenApi.VM.VCPUsMax, template.Vcpus);
        vm.Set(XenApi.VM.VCPUsAtStartup, template.Vcpus);
        vm.Set(XenApi.VM.HVMBootPolicy, "BIOS order");
        vm.Set(XenApi.VM.HVMBootParams, template.BootParams);
        vm.Set(XenApi.VM.HVMShadowMultiplier, 1.0);
        vm.Set(XenApi.VM.Platform, template.Platform);
        vm.Set(XenApi.VM.Recommendations, template.Recommendations);
        vm.Set(XenApi.VM.ActionsAfterShutdown, OnNormalExit.Destroy);
        vm.Set(XenApi.VM.ActionsAfterReboot, OnNormalExit.Restart);
        vm.Set(XenApi.VM.ActionsAfterCrash, OnCrashBehaviour.Restart);
        var config = new Dictionary<string, string>(template.OtherConfig, StringComparer.Ordinal)
        {
            ["default_template"] = "true",
            ["mac_seed"] = Guid.NewGuid().ToString(),
        };
        if (template.DiskSize is { } size)
        {
            config[VmProvisioning.DisksKey] = DisksXml(size, template.DiskBootable);
        }

        vm.Set(XenApi.VM.OtherConfig, config);
        vm.Set(XenApi.VM.Metrics, metricsRef);
    }
}
