using Corral.Model;

namespace Corral.Api.AllowedOperations;

/// <summary>
/// The <c>allowed_operations</c> of any object the rules cover, as the wire values to store (under the object's own
/// allowed-operations key, see <see cref="Corral.PoolDatabase.DerivedFields"/>), and which objects' lists
/// read a given object (so must be computed again when it changes).
/// </summary>
public sealed class AllowedOperationsCalculator(ImplementedOperations implemented)
{
    /// <summary>The classes whose <c>allowed_operations</c> Corral computes.</summary>
    public static readonly IReadOnlySet<string> Classes = new HashSet<string>(StringComparer.Ordinal)
    {
        XenClasses.VM, XenClasses.VBD, XenClasses.VIF, XenClasses.VDI, XenClasses.SR, XenClasses.Host, XenClasses.Pool, XenClasses.Task,
        XenApi.VTPM.ClassName,
    };

    /// <summary>The wire values of <paramref name="obj"/>'s allowed operations, or null for a class not covered.</summary>
    public IReadOnlyList<string>? Compute(OperationFacts facts, XenObject obj) => obj.Class switch
    {
        XenClasses.VM => Wire(VmOperationRules.Allowed(facts.Vm(obj), implemented), XenEnumTypes.VmOperations),
        XenClasses.VBD => Wire(VbdOperationRules.Allowed(facts.Vbd(obj), implemented), XenEnumTypes.VbdOperations),
        XenClasses.VIF => Wire(VifOperationRules.Allowed(facts.Vif(obj), implemented), XenEnumTypes.VifOperations),
        XenClasses.VDI => Wire(VdiOperationRules.Allowed(facts.Vdi(obj), implemented), XenEnumTypes.VdiOperations),
        XenClasses.SR => Wire(SrOperationRules.Allowed(facts.Sr(obj), implemented), XenEnumTypes.StorageOperations),
        XenClasses.Host => Wire(HostOperationRules.Allowed(facts.Host(obj), implemented), XenEnumTypes.HostAllowedOperations),
        XenClasses.Pool => Wire(PoolOperationRules.Allowed(facts.PoolOf(obj), implemented), XenEnumTypes.PoolAllowedOperations),
        XenClasses.Task => Wire(TaskOperationRules.Allowed(OperationFacts.Task(obj), implemented), XenEnumTypes.TaskAllowedOperations),
        _ when obj.Class == XenApi.VTPM.ClassName => Wire(facts.VtpmAllowed(obj), XenEnumTypes.VtpmOperations),
        _ => null,
    };

    private static List<string> Wire<TOp>(IEnumerable<TOp> ops, FieldType.EnumOf type)
        where TOp : struct, Enum => ops.Select(op => XenEnum.ToWire(type, op)).ToList();

    /// <summary>
    /// The objects whose allowed operations depend on <paramref name="obj"/> (itself included when it has some), as
    /// found in <paramref name="index"/>: a VBD's VM and VDI, a VM's devices, an SR's VDIs...
    /// </summary>
    public static IEnumerable<(string Class, string Ref)> Dependents(PoolObjectIndex index, XenObject obj)
    {
        IEnumerable<(string, string)> Refs(IEnumerable<XenObject> objects) => objects.Select(o => (o.Class, o.Ref));
        IEnumerable<(string, string)> VmAndDevices(string vm) =>
            [(XenClasses.VM, vm), .. Refs(index.Referring(XenClasses.VBD, "VM", vm)), .. Refs(index.Referring(XenClasses.VIF, "VM", vm)),
             .. Refs(index.Referring(XenApi.VTPM.ClassName, "VM", vm))];
        IEnumerable<(string, string)> VdiAndUsers(string vdi) =>
        [
            (XenClasses.VDI, vdi), .. Refs(index.Referring(XenClasses.VBD, "VDI", vdi)),
            .. index.Referring(XenClasses.VBD, "VDI", vdi).Select(v => (XenClasses.VM, v.Get(XenApi.VBD.VM))),
        ];

        return obj.Class switch
        {
            XenClasses.VM => VmAndDevices(obj.Ref),
            XenClasses.VMMetrics => index.Referring(XenClasses.VM, "metrics", obj.Ref).SelectMany(vm => VmAndDevices(vm.Ref)),
            XenClasses.VMGuestMetrics => index.Referring(XenClasses.VM, "guest_metrics", obj.Ref).SelectMany(vm => VmAndDevices(vm.Ref)),
            XenClasses.VBD => [(XenClasses.VBD, obj.Ref), (XenClasses.VM, obj.Get(XenApi.VBD.VM)), (XenClasses.VDI, obj.Get(XenApi.VBD.VDI))],
            XenClasses.VIF => [(XenClasses.VIF, obj.Ref)],
            XenClasses.VDI => [.. VdiAndUsers(obj.Ref), (XenClasses.SR, obj.Get(XenApi.VDI.SR))],
            XenClasses.SR => [(XenClasses.SR, obj.Ref), .. Refs(index.Referring(XenClasses.VDI, "SR", obj.Ref))],
            XenClasses.PBD => [(XenClasses.SR, obj.Get(XenApi.PBD.SR)), .. Refs(index.Referring(XenClasses.VDI, "SR", obj.Get(XenApi.PBD.SR)))],
            XenClasses.Host => [(XenClasses.Host, obj.Ref), .. index.Referring(XenClasses.VM, "resident_on", obj.Ref)
                .Where(vm => vm.Get(XenApi.VM.IsControlDomain)).SelectMany(vm => VmAndDevices(vm.Ref))],
            XenClasses.HostMetrics => Refs(index.All(XenClasses.Host).Where(h => h.Get(XenApi.Host.Metrics) == obj.Ref)),
            XenClasses.Pool => [(XenClasses.Pool, obj.Ref), .. Refs(index.All(XenClasses.VM)), .. Refs(index.All(XenClasses.VDI)), .. Refs(index.All(XenClasses.SR))],
            XenClasses.PIF => Refs(index.Referring(XenClasses.VIF, "network", obj.Get(XenApi.PIF.Network))),
            XenClasses.Task => [(XenClasses.Task, obj.Ref)],
            _ when obj.Class == XenApi.VTPM.ClassName => [(XenApi.VTPM.ClassName, obj.Ref), (XenClasses.VM, obj.Get(XenApi.VTPM.VM))],
            _ when obj.Class == XenApi.Cluster.ClassName => index.Pool is { } pool ? [(XenClasses.Pool, pool.Ref)] : [],
            _ => [],
        };
    }
}
