namespace Corral.Model;

/// <summary>
/// The XenAPI classes a Corral pool stores, with XenAPI's field names and types. Fields Corral does not act on are
/// still present with XenAPI's defaults, so that clients written for XenServer find every field they read.
/// </summary>
public static class XenClasses
{
    public const string Pool = "pool";
    public const string Host = "host";
    public const string HostMetrics = "host_metrics";
    public const string VM = "VM";
    public const string VMMetrics = "VM_metrics";
    public const string VMGuestMetrics = "VM_guest_metrics";
    public const string SR = "SR";
    public const string PBD = "PBD";
    public const string VDI = "VDI";
    public const string VBD = "VBD";
    public const string Network = "network";
    public const string VIF = "VIF";
    public const string PIF = "PIF";
    public const string Task = "task";
    public const string Message = "message";
    public const string Session = "session";
    public const string Console = "console";

    public static ClassSchema PoolSchema => XenApi.Pool.Schema;
    public static ClassSchema HostSchema => XenApi.Host.Schema;
    public static ClassSchema HostMetricsSchema => XenApi.HostMetrics.Schema;
    public static ClassSchema VMSchema => XenApi.VM.Schema;
    public static ClassSchema VMMetricsSchema => XenApi.VMMetrics.Schema;
    public static ClassSchema VMGuestMetricsSchema => XenApi.VMGuestMetrics.Schema;
    public static ClassSchema SRSchema => XenApi.SR.Schema;
    public static ClassSchema PBDSchema => XenApi.PBD.Schema;
    public static ClassSchema VDISchema => XenApi.VDI.Schema;
    public static ClassSchema VBDSchema => XenApi.VBD.Schema;
    public static ClassSchema NetworkSchema => XenApi.Network.Schema;
    public static ClassSchema VIFSchema => XenApi.VIF.Schema;
    public static ClassSchema PIFSchema => XenApi.PIF.Schema;
    public static ClassSchema PIFMetricsSchema => XenApi.PIFMetrics.Schema;
    public static ClassSchema TaskSchema => XenApi.Task.Schema;
    public static ClassSchema MessageSchema => XenApi.Message.Schema;
    public static ClassSchema SessionSchema => XenApi.Session.Schema;
    public static ClassSchema ConsoleSchema => XenApi.Console.Schema;

    /// <summary>Every class of xapi's datamodel that is not removed: the classes a pool database holds objects of.</summary>
    public static IReadOnlyList<ClassSchema> All { get; } = XenApi.AllClasses.Where(c => c.Lifecycle != Lifecycle.Removed).ToList();

    private static readonly Dictionary<string, ClassSchema> ByName =
        All.ToDictionary(c => c.Name, StringComparer.OrdinalIgnoreCase);

    /// <summary>Finds a class by its XenAPI name, in any case (event.from subscribers write "vm" as often as "VM").</summary>
    public static ClassSchema? Find(string name) => ByName.GetValueOrDefault(name);

    public static ClassSchema Get(string name) =>
        Find(name) ?? throw new XenApiException(ErrorCodes.MessageMethodUnknown, name);
}

/// <summary>
/// A set-of-refs field that is the reverse of a ref field on another class (VM.VBDs is every VBD whose VM is this
/// VM). Reverse links are computed when read, never stored, so they cannot disagree with the forward link.
/// </summary>
public sealed record ReverseLink(string ClassName, string Field, string ChildClass, string ChildField)
{
    public static IReadOnlyList<ReverseLink> All { get; } =
    [
        new(XenClasses.VM, "VBDs", XenClasses.VBD, "VM"),
        new(XenClasses.VM, "VIFs", XenClasses.VIF, "VM"),
        new(XenClasses.VM, "consoles", XenClasses.Console, "VM"),
        new(XenClasses.VDI, "VBDs", XenClasses.VBD, "VDI"),
        new(XenClasses.SR, "VDIs", XenClasses.VDI, "SR"),
        new(XenClasses.SR, "PBDs", XenClasses.PBD, "SR"),
        new(XenClasses.Host, "PBDs", XenClasses.PBD, "host"),
        new(XenClasses.Host, "PIFs", XenClasses.PIF, "host"),
        new(XenClasses.Host, "resident_VMs", XenClasses.VM, "resident_on"),
        new(XenClasses.Network, "VIFs", XenClasses.VIF, "network"),
        new(XenClasses.Network, "PIFs", XenClasses.PIF, "network"),
        new(XenClasses.Task, "subtasks", XenClasses.Task, "subtask_of"),
        new(XenClasses.Host, "host_CPUs", XenApi.HostCpu.ClassName, "host"),
        new(XenClasses.Host, "certificates", XenApi.Certificate.ClassName, "host"),
        new(XenClasses.VM, "VTPMs", XenApi.VTPM.ClassName, "VM"),
        new(XenClasses.VM, "snapshots", XenClasses.VM, "snapshot_of"),
        new(XenClasses.VM, "children", XenClasses.VM, "parent"),
        new(XenClasses.VDI, "snapshots", XenClasses.VDI, "snapshot_of"),
    ];

    public static IReadOnlyList<ReverseLink> Of(string className) => All.Where(l => l.ClassName == className).ToList();
}
