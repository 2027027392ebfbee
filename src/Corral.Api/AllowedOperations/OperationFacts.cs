using System.Globalization;
using Corral.Model;

namespace Corral.Api.AllowedOperations;

/// <summary>
/// Derives the facts each class's rules decide from, out of the pool's records: the object itself (given, since the
/// caller may hold a newer copy than the index) and what it depends on, found in <paramref name="index"/>.
/// </summary>
/// <param name="smFeatures">The SM features of an SR type (Corral's SR drivers; it keeps no SM records).</param>
public sealed class OperationFacts(PoolObjectIndex index, Func<string, IReadOnlySet<string>> smFeatures)
{
    public PoolObjectIndex Index => index;

    private XenObject? Pool => index.Pool;

    private bool RollingUpgrade => Pool?.GetStringMap("other_config").ContainsKey("rolling_upgrade_in_progress") == true;

    public VmFacts Vm(XenObject vm)
    {
        var metrics = index.Find(XenClasses.VMMetrics, vm.GetString("metrics"));
        var guest = index.Find(XenClasses.VMGuestMetrics, vm.GetString("guest_metrics"));
        var platform = vm.GetStringMap("platform");
        var other = vm.GetStringMap("other_config");
        var vdis = index.Referring(XenClasses.VBD, "VM", vm.Ref)
            .Select(vbd => index.Find(XenClasses.VDI, vbd.GetString("VDI")))
            .OfType<XenObject>()
            .Select(vdi => vdi.GetStringMap("sm_config"))
            .Select(sm => (sm.GetValueOrDefault("on_boot") == "reset", IsTrue(sm, "caching")))
            .ToList();
        return new VmFacts
        {
            Ref = vm.Ref,
            PowerState = vm.Get(XenApi.VM.PowerState),
            IsATemplate = vm.GetBool("is_a_template"),
            IsASnapshot = vm.GetBool("is_a_snapshot"),
            IsDefaultTemplate = vm.GetBool("is_default_template") || IsTrue(other, "default_template"),
            IsControlDomain = vm.GetBool("is_control_domain"),
            IsDomainZero = IsDomainZero(vm),
            CurrentOperations = InProgressOf<VmOperations>(vm, XenEnumTypes.VmOperations),
            BlockedOperations = vm.GetStringMap("blocked_operations")
                .Select(kv => (Op: TryParse<VmOperations>(XenEnumTypes.VmOperations, kv.Key), kv.Value))
                .Where(x => x.Op is not null).ToDictionary(x => x.Op!.Value, x => x.Value),
            CurrentDomainType = metrics?.Get(XenApi.VMMetrics.CurrentDomainType),
            HasGuestMetrics = guest is not null,
            GuestOther = guest?.GetStringMap("other") ?? new Dictionary<string, string>(),
            HasPvDrivers = HasPvDrivers(guest),
            GuestAgentLive = guest?.GetBool("live") == true,
            NoMigrate = metrics is not null ? metrics.GetBool("nomigrate") : IsTrue(platform, "nomigrate"),
            NestedVirt = metrics is not null ? metrics.GetBool("nested_virt") : IsTrue(platform, "nested-virt"),
            Vdis = vdis,
            PassedThroughPcis = vm.GetSet("attached_PCIs").Count,
            Vgpus = vm.GetSet("VGPUs").Count,
            Vusbs = vm.GetSet("VUSBs").Count,
            Vtpms = index.Referring(XenApi.VTPM.ClassName, "VM", vm.Ref).Count(),
            Appliance = Valid(vm.GetString("appliance")),
            ProtectionPolicy = Valid(vm.GetString("protection_policy")),
            SnapshotSchedule = Valid(vm.GetString("snapshot_schedule")),
            IsSystemDomain = IsTrue(other, "is_system_domain"),
            AllowCloneSuspended = Pool?.GetStringMap("other_config").GetValueOrDefault("allow_clone_suspended_vm") == "true",
            RollingUpgrade = RollingUpgrade,
        };
    }

    public DeviceVmFacts DeviceVm(string vmRef)
    {
        if (index.Find(XenClasses.VM, vmRef) is not { } vm)
        {
            return new DeviceVmFacts { Ref = vmRef };
        }

        var guest = index.Find(XenClasses.VMGuestMetrics, vm.GetString("guest_metrics"));
        var domainType = vm.GetString("domain_type");
        return new DeviceVmFacts
        {
            Ref = vm.Ref,
            PowerState = vm.Get(XenApi.VM.PowerState),
            CurrentOperations = InProgressOf<VmOperations>(vm, XenEnumTypes.VmOperations),
            IsHvm = domainType == "hvm" || (domainType is "" or "unspecified" && vm.GetString("HVM_boot_policy").Length > 0),
            IsDomainZero = IsDomainZero(vm),
            HasGuestMetrics = guest is not null,
            CanUseHotplugVbd = guest?.Get(XenApi.VMGuestMetrics.CanUseHotplugVbd) ?? TristateType.Unspecified,
            CanUseHotplugVif = guest?.Get(XenApi.VMGuestMetrics.CanUseHotplugVif) ?? TristateType.Unspecified,
            PvDriversDetected = guest?.GetBool("PV_drivers_detected") == true,
            HasPvDrivers = HasPvDrivers(guest),
        };
    }

    public VbdFacts Vbd(XenObject vbd)
    {
        var vdi = vbd.GetBool("empty") ? null : index.Find(XenClasses.VDI, vbd.GetString("VDI"));
        return new VbdFacts
        {
            Ref = vbd.Ref,
            Vm = DeviceVm(vbd.GetString("VM")),
            Type = vbd.Get(XenApi.VBD.Type),
            Empty = vbd.GetBool("empty"),
            Unpluggable = vbd.GetBool("unpluggable"),
            Plugged = vbd.GetBool("currently_attached"),
            CurrentOperations = InProgressOf<VbdOperations>(vbd, XenEnumTypes.VbdOperations),
            Vdi = vdi?.Ref,
            VdiManaged = vdi?.GetBool("managed") ?? true,
            VdiCurrentOperations = vdi is null ? InProgress.None<VdiOperations>() : InProgressOf<VdiOperations>(vdi, XenEnumTypes.VdiOperations),
        };
    }

    public VifFacts Vif(XenObject vif) => new()
    {
        Ref = vif.Ref,
        Vm = DeviceVm(vif.GetString("VM")),
        Plugged = vif.GetBool("currently_attached"),
        CurrentOperations = InProgressOf<VifOperations>(vif, XenEnumTypes.VifOperations),
        SriovNetwork = index.Referring(XenClasses.PIF, "network", vif.GetString("network")).Any(p => p.GetSet("sriov_logical_PIF_of").Count > 0),
    };

    public SrSide SrSide(string srRef)
    {
        var sr = index.Find(XenClasses.SR, srRef);
        var type = sr?.GetString("type") ?? "";
        return new SrSide { Ref = srRef, Type = type, IsToolsSr = sr?.GetBool("is_tools_sr") == true, Features = smFeatures(type) };
    }

    public VdiFacts Vdi(XenObject vdi)
    {
        var srRef = vdi.GetString("SR");
        var users = index.Referring(XenClasses.VBD, "VDI", vdi.Ref).Select(vbd => new VdiUser(
            vbd.Ref,
            vbd.GetBool("currently_attached"),
            vbd.GetString("mode") == "RW",
            index.Find(XenClasses.VM, vbd.GetString("VM"))?.GetBool("is_a_snapshot") == true,
            InProgressOf<VbdOperations>(vbd, XenEnumTypes.VbdOperations).Entries.Cast<KeyValuePair<string, VbdOperations>?>().FirstOrDefault())).ToList();
        return new VdiFacts
        {
            Ref = vdi.Ref,
            Sr = SrSide(srRef),
            Type = vdi.Get(XenApi.VDI.Type),
            Sharable = vdi.GetBool("sharable"),
            IsASnapshot = vdi.GetBool("is_a_snapshot"),
            CbtEnabled = vdi.GetBool("cbt_enabled"),
            ResetOnBoot = vdi.GetString("on_boot") == "reset",
            CurrentOperations = InProgressOf<VdiOperations>(vdi, XenEnumTypes.VdiOperations),
            SrAttached = index.Referring(XenClasses.PBD, "SR", srRef).Any(p => p.GetBool("currently_attached")),
            Vbds = users,
            HaEnabled = Pool?.GetBool("ha_enabled") == true,
            PoolOperations = Pool is null ? InProgress.None<PoolAllowedOperations>() : InProgressOf<PoolAllowedOperations>(Pool, XenEnumTypes.PoolAllowedOperations),
            RollingUpgrade = RollingUpgrade,
        };
    }

    public SrFacts Sr(XenObject sr) => new()
    {
        Sr = SrSide(sr.Ref) with { Type = sr.GetString("type"), IsToolsSr = sr.GetBool("is_tools_sr"), Features = smFeatures(sr.GetString("type")) },
        CurrentOperations = InProgressOf<StorageOperations>(sr, XenEnumTypes.StorageOperations),
        Pbds = index.Referring(XenClasses.PBD, "SR", sr.Ref).Count(),
        Vdis = index.Referring(XenClasses.VDI, "SR", sr.Ref)
            .Select(vdi => (vdi.Ref, index.Referring(XenClasses.VBD, "VDI", vdi.Ref).Any(v => v.GetBool("currently_attached"))))
            .ToList(),
        HaEnabled = Pool?.GetBool("ha_enabled") == true,
        HaClusterStack = Pool?.GetString("ha_cluster_stack") ?? "",
        RollingUpgrade = RollingUpgrade,
    };

    public HostFacts Host(XenObject host) => new()
    {
        Ref = host.Ref,
        Enabled = host.GetBool("enabled"),
        Live = index.Find(XenClasses.HostMetrics, host.GetString("metrics"))?.GetBool("live"),
        PowerOnMode = host.GetString("power_on_mode"),
        // Corral runs no xapi plugins, power-on-host among them; it has no clustered SRs either.
        PowerOnPluginPresent = false,
        ClusteredSrRecovering = null,
        CurrentOperations = InProgressOf<HostAllowedOperations>(host, XenEnumTypes.HostAllowedOperations),
        RollingUpgrade = RollingUpgrade,
    };

    public PoolFacts PoolOf(XenObject pool) => new()
    {
        Ref = pool.Ref,
        CurrentOperations = InProgressOf<PoolAllowedOperations>(pool, XenEnumTypes.PoolAllowedOperations),
        HaEnabled = pool.GetBool("ha_enabled"),
        HaClusterStack = pool.GetString("ha_cluster_stack"),
        ClusterExists = index.All(XenApi.Cluster.ClassName).Count > 0,
        RollingUpgrade = pool.GetStringMap("other_config").ContainsKey("rolling_upgrade_in_progress"),
    };

    /// <summary>Nothing Corral runs under a task stops on task.cancel yet (task.cancel records the request only).</summary>
    public static TaskFacts Task(XenObject task) => new(task.Ref, task.Get(XenApi.Task.Status), Cancellable: false);

    private bool IsDomainZero(XenObject vm) =>
        vm.GetBool("is_control_domain") && index.Find(XenClasses.Host, vm.GetString("resident_on"))?.GetString("control_domain") == vm.Ref;

    /// <summary>An object's <c>current_operations</c>, entries whose value is not an operation of the class skipped.</summary>
    public static InProgress<TOp> InProgressOf<TOp>(XenObject obj, FieldType.EnumOf type)
        where TOp : struct, Enum =>
        new(obj.GetStringMap("current_operations")
            .Select(kv => (kv.Key, Op: TryParse<TOp>(type, kv.Value)))
            .Where(x => x.Op is not null)
            .Select(x => new KeyValuePair<string, TOp>(x.Key, x.Op!.Value)).ToList());

    public static TOp? TryParse<TOp>(FieldType.EnumOf type, string wire)
        where TOp : struct, Enum =>
        type.Values.Contains(wire, StringComparer.OrdinalIgnoreCase) ? XenEnum.FromWire<TOp>(type, wire) : null;

    /// <summary>xapi's test of a boolean map entry: "1" or "true", in any case.</summary>
    public static bool IsTrue(IReadOnlyDictionary<string, string> map, string key) =>
        map.TryGetValue(key, out var v) && (v == "1" || v.Equals("true", StringComparison.OrdinalIgnoreCase));

    /// <summary>xapi's "has PV drivers": a major and a minor version that are numbers (micro and build too, if given).</summary>
    public static bool HasPvDrivers(XenObject? guestMetrics)
    {
        if (guestMetrics is null)
        {
            return false;
        }

        var version = guestMetrics.GetStringMap("PV_drivers_version");
        static bool Number(string s) => int.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _);
        return version.TryGetValue("major", out var major) && Number(major) && version.TryGetValue("minor", out var minor) && Number(minor)
               && (!version.TryGetValue("micro", out var micro) || Number(micro)) && (!version.TryGetValue("build", out var build) || Number(build));
    }

    private static string? Valid(string reference) => OpaqueRef.IsNull(reference) ? null : reference;
}
