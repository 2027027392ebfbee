using Corral.Model;
using static Corral.Model.HostAllowedOperations;

namespace Corral.Api.AllowedOperations;

/// <summary>Everything the host rules read: the host, its metrics, and the pool's clustered SRs.</summary>
public sealed record HostFacts
{
    public required string Ref { get; init; }

    public bool Enabled { get; init; } = true;

    /// <summary><c>host_metrics.live</c>; null without a metrics record.</summary>
    public bool? Live { get; init; }

    public string PowerOnMode { get; init; } = "";

    /// <summary>The executable that powers the host on (xapi's <c>power-on-host</c> plugin) exists.</summary>
    public bool PowerOnPluginPresent { get; init; }

    public InProgress<HostAllowedOperations> CurrentOperations { get; init; } = InProgress.None<HostAllowedOperations>();

    /// <summary>The description of a health check running on a clustered SR that some host has plugged, if any.</summary>
    public string? ClusteredSrRecovering { get; init; }

    public bool RollingUpgrade { get; init; }
}

/// <summary>Which operations a host allows, as xapi decides them (xapi_host_helpers: the first error recorded wins).</summary>
public static class HostOperationRules
{
    public static readonly IReadOnlyList<HostAllowedOperations> Candidates = Enum.GetValues<HostAllowedOperations>();

    private static readonly HostAllowedOperations[] Creating = [Provision, VmResume, VmMigrate];
    private static readonly HostAllowedOperations[] Removing = [Evacuate, Reboot, Shutdown];

    public static IReadOnlyList<HostAllowedOperations> Allowed(HostFacts host, ImplementedOperations implemented) =>
        Candidates.Where(op => implemented.Has(op) && (!host.RollingUpgrade || op is Evacuate or Provision) && Check(host, op) is null).ToList();

    public static OperationError? Check(HostFacts host, HostAllowedOperations op)
    {
        var current = host.CurrentOperations;
        var conflicting = op == PowerOn ? null
            : Creating.Contains(op) ? current.First(o => Removing.Contains(o))
            : Removing.Contains(op) ? current.First(o => Creating.Contains(o))
            : null;
        conflicting ??= op switch
        {
            Shutdown or ApplyUpdates when current.First(o => o == Reboot) is { } reboot => reboot,
            Reboot or ApplyUpdates when current.First(o => o == Shutdown) is { } shutdown => shutdown,
            Reboot or Shutdown or Enable when current.First(o => o == ApplyUpdates) is { } updates => updates,
            Provision => current.First(o => o == Provision),
            _ => null,
        };
        if (conflicting is { } entry)
        {
            return OperationError.Of(ErrorCodes.OtherOperationInProgress, XenClasses.Host, host.Ref, Display(entry.Value), entry.Key);
        }

        return op switch
        {
            Reboot or Shutdown or ApplyUpdates when host.Enabled => OperationError.Of("HOST_NOT_DISABLED"),
            PowerOn when host.Live == true => OperationError.Of("HOST_IS_LIVE", host.Ref),
            PowerOn when host.PowerOnMode.Length == 0 => OperationError.Of("HOST_POWER_ON_MODE_DISABLED"),
            PowerOn when !host.PowerOnPluginPresent => OperationError.Of("XENAPI_MISSING_PLUGIN", "power-on-host"),
            Reboot or Shutdown or ApplyUpdates when host.ClusteredSrRecovering is { } health => OperationError.Of("CLUSTERED_SR_DEGRADED", health),
            _ => null,
        };
    }

    /// <summary>How xapi spells a host operation inside its errors.</summary>
    public static string Display(HostAllowedOperations op) => op switch
    {
        VmStart => "VM.start",
        VmResume => "VM.resume",
        VmMigrate => "VM.migrate",
        _ => XenEnum.ToWire(XenEnumTypes.HostAllowedOperations, op),
    };
}
