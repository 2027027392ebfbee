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

    private bool RollingUpgrade => Pool?.Get(XenApi.Pool.OtherConfig).ContainsKey(global::Corral.Api.Pool.RollingUpgrade.InProgressKey) == true;

    public VmFacts Vm(XenObject vm)
    {
        var metrics = index.Find(XenClasses.VMMetrics, vm.Get(XenApi.VM.Metrics));
        var guest = index.Find(XenClasses.VMGuestMetrics, vm.Get(XenApi.VM.GuestMetrics));
        var platform = vm.Get(XenApi.VM.Platform);
        var other = vm.Get(XenApi.VM.OtherConfig);
        var vdis = index.Referring(XenClasses.VBD, "VM", vm.Ref)
            .Select(vbd => index.Find(XenClasses.VDI, vbd.Get(XenApi.VBD.VDI)))
            .OfType<XenObject>()
            .Select(vdi => vdi.Get(XenApi.VDI.SmConfig))
            .Select(sm => (sm.GetValueOrDefault("on_boot") == "reset", IsTrue(sm, "caching")))
            .ToList();
        return new VmFacts
        {
            Ref = vm.Ref,
            PowerState = vm.Get(XenApi.VM.PowerState),
            IsATemplate = vm.Get(XenApi.VM.IsATemplate),
            IsASnapshot = vm.Get(XenApi.VM.IsASnapshot),
            IsDefaultTemplate = vm.Get(XenApi.VM.IsDefaultTemplate) || IsTrue(other, "default_template"),
            IsControlDomain = vm.Get(XenApi.VM.IsControlDomain),
            IsDomainZero = IsDomainZero(vm),
            CurrentOperations = InProgressOf<VmOperations>(vm, XenEnumTypes.VmOperations),
            BlockedOperations = vm.GetStringMap("blocked_operations")
                .Select(kv => (Op: TryParse<VmOperations>(XenEnumTypes.VmOperations, kv.Key), kv.Value))
                .Where(x => x.Op is not null).ToDictionary(x => x.Op!.Value, x => x.Value),
            CurrentDomainType = metrics?.Get(XenApi.VMMetrics.CurrentDomainType),
            HasGuestMetrics = guest is not null,
            GuestOther = guest?.Get(XenApi.VMGuestMetrics.Other) ?? new Dictionary<string, string>(),
            HasPvDrivers = HasPvDrivers(guest),
            GuestAgentLive = guest?.Get(XenApi.VMGuestMetrics.Live) == true,
            NoMigrate = metrics is not null ? metrics.Get(XenApi.VMMetrics.Nomigrate) : IsTrue(platform, "nomigrate"),
            NestedVirt = metrics is not null ? metrics.Get(XenApi.VMMetrics.NestedVirt) : IsTrue(platform, "nested-virt"),
            Vdis = vdis,
            PassedThroughPcis = vm.Get(XenApi.VM.AttachedPCIs).Count,
            Vgpus = vm.Get(XenApi.VM.VGPUs).Count,
            Vusbs = vm.Get(XenApi.VM.VUSBs).Count,
            Vtpms = index.Referring(XenApi.VTPM.ClassName, "VM", vm.Ref).Count(),
            Appliance = Valid(vm.Get(XenApi.VM.Appliance)),
            ProtectionPolicy = Valid(vm.Get(XenApi.VM.ProtectionPolicy)),
            SnapshotSchedule = Valid(vm.Get(XenApi.VM.SnapshotSchedule)),
            IsSystemDomain = IsTrue(other, "is_system_domain"),
            AllowCloneSuspended = Pool?.Get(XenApi.Pool.OtherConfig).GetValueOrDefault("allow_clone_suspended_vm") == "true",
            RollingUpgrade = RollingUpgrade,
        };
    }

    public DeviceVmFacts DeviceVm(string vmRef)
    {
        if (index.Find(XenClasses.VM, vmRef) is not { } vm)
        {
            return new DeviceVmFacts { Ref = vmRef };
        }

        var guest = index.Find(XenClasses.VMGuestMetrics, vm.Get(XenApi.VM.GuestMetrics));
        var domainType = vm.Get(XenApi.VM.DomainType);
        return new DeviceVmFacts
        {
            Ref = vm.Ref,
            PowerState = vm.Get(XenApi.VM.PowerState),
            CurrentOperations = InProgressOf<VmOperations>(vm, XenEnumTypes.VmOperations),
            IsHvm = domainType == DomainType.Hvm || (domainType == DomainType.Unspecified && vm.Get(XenApi.VM.HVMBootPolicy).Length > 0),
            IsDomainZero = IsDomainZero(vm),
            HasGuestMetrics = guest is not null,
            CanUseHotplugVbd = guest?.Get(XenApi.VMGuestMetrics.CanUseHotplugVbd) ?? TristateType.Unspecified,
            CanUseHotplugVif = guest?.Get(XenApi.VMGuestMetrics.CanUseHotplugVif) ?? TristateType.Unspecified,
            PvDriversDetected = guest?.Get(XenApi.VMGuestMetrics.PVDriversDetected) == true,
            HasPvDrivers = HasPvDrivers(guest),
        };
    }

    public VbdFacts Vbd(XenObject vbd)
    {
        var vdi = vbd.Get(XenApi.VBD.Empty) ? null : index.Find(XenClasses.VDI, vbd.Get(XenApi.VBD.VDI));
        return new VbdFacts
        {
            Ref = vbd.Ref,
            Vm = DeviceVm(vbd.Get(XenApi.VBD.VM)),
            Type = vbd.Get(XenApi.VBD.Type),
            Empty = vbd.Get(XenApi.VBD.Empty),
            Unpluggable = vbd.Get(XenApi.VBD.Unpluggable),
            Plugged = vbd.Get(XenApi.VBD.CurrentlyAttached),
            CurrentOperations = InProgressOf<VbdOperations>(vbd, XenEnumTypes.VbdOperations),
            Vdi = vdi?.Ref,
            VdiManaged = vdi?.Get(XenApi.VDI.Managed) ?? true,
            VdiCurrentOperations = vdi is null ? InProgress.None<VdiOperations>() : InProgressOf<VdiOperations>(vdi, XenEnumTypes.VdiOperations),
        };
    }

    public VifFacts Vif(XenObject vif) => new()
    {
        Ref = vif.Ref,
        Vm = DeviceVm(vif.Get(XenApi.VIF.VM)),
        Plugged = vif.Get(XenApi.VIF.CurrentlyAttached),
        CurrentOperations = InProgressOf<VifOperations>(vif, XenEnumTypes.VifOperations),
        SriovNetwork = index.Referring(XenClasses.PIF, "network", vif.Get(XenApi.VIF.Network)).Any(p => p.Get(XenApi.PIF.SriovLogicalPIFOf).Count > 0),
    };

    public SrSide SrSide(string srRef)
    {
        var sr = index.Find(XenClasses.SR, srRef);
        var type = sr?.Get(XenApi.SR.Type) ?? "";
        return new SrSide { Ref = srRef, Type = type, IsToolsSr = sr?.Get(XenApi.SR.IsToolsSr) == true, Features = smFeatures(type) };
    }

    public VdiFacts Vdi(XenObject vdi)
    {
        var srRef = vdi.Get(XenApi.VDI.SR);
        var users = index.Referring(XenClasses.VBD, "VDI", vdi.Ref).Select(vbd => new VdiUser(
            vbd.Ref,
            vbd.Get(XenApi.VBD.CurrentlyAttached),
            vbd.Get(XenApi.VBD.Mode) == VbdMode.RW,
            index.Find(XenClasses.VM, vbd.Get(XenApi.VBD.VM))?.Get(XenApi.VM.IsASnapshot) == true,
            InProgressOf<VbdOperations>(vbd, XenEnumTypes.VbdOperations).Entries.Cast<KeyValuePair<string, VbdOperations>?>().FirstOrDefault())).ToList();
        return new VdiFacts
        {
            Ref = vdi.Ref,
            Sr = SrSide(srRef),
            Type = vdi.Get(XenApi.VDI.Type),
            Sharable = vdi.Get(XenApi.VDI.Sharable),
            IsASnapshot = vdi.Get(XenApi.VDI.IsASnapshot),
            CbtEnabled = vdi.Get(XenApi.VDI.CbtEnabled),
            ResetOnBoot = vdi.Get(XenApi.VDI.OnBoot) == OnBoot.Reset,
            CurrentOperations = InProgressOf<VdiOperations>(vdi, XenEnumTypes.VdiOperations),
            SrAttached = index.Referring(XenClasses.PBD, "SR", srRef).Any(p => p.Get(XenApi.PBD.CurrentlyAttached)),
            Vbds = users,
            HaEnabled = Pool?.Get(XenApi.Pool.HaEnabled) == true,
            PoolOperations = Pool is null ? InProgress.None<PoolAllowedOperations>() : InProgressOf<PoolAllowedOperations>(Pool, XenEnumTypes.PoolAllowedOperations),
            RollingUpgrade = RollingUpgrade,
        };
    }

    public SrFacts Sr(XenObject sr) => new()
    {
        Sr = SrSide(sr.Ref) with { Type = sr.Get(XenApi.SR.Type), IsToolsSr = sr.Get(XenApi.SR.IsToolsSr), Features = smFeatures(sr.Get(XenApi.SR.Type)) },
        CurrentOperations = InProgressOf<StorageOperations>(sr, XenEnumTypes.StorageOperations),
        Pbds = index.Referring(XenClasses.PBD, "SR", sr.Ref).Count(),
        Vdis = index.Referring(XenClasses.VDI, "SR", sr.Ref)
            .Select(vdi => (vdi.Ref, index.Referring(XenClasses.VBD, "VDI", vdi.Ref).Any(v => v.Get(XenApi.VBD.CurrentlyAttached))))
            .ToList(),
        HaEnabled = Pool?.Get(XenApi.Pool.HaEnabled) == true,
        HaClusterStack = Pool?.Get(XenApi.Pool.HaClusterStack) ?? "",
        RollingUpgrade = RollingUpgrade,
    };

    public HostFacts Host(XenObject host) => new()
    {
        Ref = host.Ref,
        Enabled = host.Get(XenApi.Host.Enabled),
        Live = index.Find(XenClasses.HostMetrics, host.Get(XenApi.Host.Metrics))?.Get(XenApi.HostMetrics.Live),
        PowerOnMode = host.Get(XenApi.Host.PowerOnMode),
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
        HaEnabled = pool.Get(XenApi.Pool.HaEnabled),
        HaClusterStack = pool.Get(XenApi.Pool.HaClusterStack),
        ClusterExists = index.All(XenApi.Cluster.ClassName).Count > 0,
        RollingUpgrade = pool.Get(XenApi.Pool.OtherConfig).ContainsKey(global::Corral.Api.Pool.RollingUpgrade.InProgressKey),
    };

    /// <summary>Nothing Corral runs under a task stops on task.cancel yet (task.cancel records the request only).</summary>
    /// <summary>xapi's rule for a VTPM: destroy while its VM is halted (VTPM.destroy itself also takes a suspended one).</summary>
    public IReadOnlyList<VtpmOperations> VtpmAllowed(XenObject vtpm) =>
        index.Find(XenClasses.VM, vtpm.Get(XenApi.VTPM.VM))?.Get(XenApi.VM.PowerState) == VmPowerState.Halted ? [VtpmOperations.Destroy] : [];

    public static TaskFacts Task(XenObject task) => new(task.Ref, task.Get(XenApi.Task.Status), Cancellable: false);

    private bool IsDomainZero(XenObject vm) =>
        vm.Get(XenApi.VM.IsControlDomain) && index.Find(XenClasses.Host, vm.Get(XenApi.VM.ResidentOn))?.Get(XenApi.Host.ControlDomain) == vm.Ref;

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

        var version = guestMetrics.Get(XenApi.VMGuestMetrics.PVDriversVersion);
        static bool Number(string s) => int.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _);
        return version.TryGetValue("major", out var major) && Number(major) && version.TryGetValue("minor", out var minor) && Number(minor)
               && (!version.TryGetValue("micro", out var micro) || Number(micro)) && (!version.TryGetValue("build", out var build) || Number(build));
    }

    private static string? Valid(string reference) => OpaqueRef.IsNull(reference) ? null : reference;
}
