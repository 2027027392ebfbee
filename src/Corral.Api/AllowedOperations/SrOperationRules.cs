using Corral.Model;
using static Corral.Model.StorageOperations;

namespace Corral.Api.AllowedOperations;

/// <summary>
/// Which operations an SR allows, as xapi decides them (xapi_sr_operations: the first error recorded wins), with
/// Corral's departures for forget and destroy, said where they happen.
/// </summary>
public static class SrOperationRules
{
    public static readonly IReadOnlyList<StorageOperations> Candidates = Enum.GetValues<StorageOperations>();

    private static readonly HashSet<StorageOperations> NotDuringUpgrade =
        [VdiMirror, VdiEnableCbt, VdiDisableCbt, VdiDataDestroy, VdiListChangedBlocks, VdiSetOnBoot];

    public static IReadOnlyList<StorageOperations> Allowed(SrFacts sr, ImplementedOperations implemented) =>
        Candidates.Where(op => implemented.Has(op) && Check(sr, op) is null).ToList();

    /// <summary>The SM feature an SR operation needs, if any.</summary>
    public static string? FeatureFor(StorageOperations op) => op switch
    {
        VdiCreate => "VDI_CREATE",
        VdiDestroy => "VDI_DELETE",
        VdiResize => "VDI_RESIZE",
        VdiIntroduce => "VDI_INTRODUCE",
        VdiMirror => "VDI_MIRROR",
        VdiEnableCbt or VdiDisableCbt or VdiDataDestroy or VdiListChangedBlocks => "VDI_CONFIG_CBT",
        VdiSetOnBoot => "VDI_RESET_ON_BOOT",
        Update => "SR_UPDATE",
        VdiSnapshot => "VDI_SNAPSHOT",
        _ => null,
    };

    public static OperationError? Check(SrFacts sr, StorageOperations op)
    {
        if (sr.RollingUpgrade && NotDuringUpgrade.Contains(op))
        {
            return OperationError.Of(ErrorCodes.NotSupportedDuringUpgrade);
        }

        if (FeatureFor(op) is { } feature && !sr.Sr.HasFeature(feature))
        {
            return OperationError.Of(ErrorCodes.SrOperationNotSupported, sr.Sr.Ref);
        }

        if (op is Destroy or Forget && Emptiness(sr, op) is { } refusal)
        {
            return refusal;
        }

        // Several PBD.plug may run together; anything else runs alone.
        var held = op == Plug ? sr.CurrentOperations.First(o => o != Plug) : sr.CurrentOperations.Entries.Cast<KeyValuePair<string, StorageOperations>?>().FirstOrDefault();
        if (held is { } entry)
        {
            return OperationError.Of(ErrorCodes.OtherOperationInProgress, XenClasses.SR, sr.Sr.Ref, Display(entry.Value), entry.Key);
        }

        return op == Plug && sr.HaEnabled && sr.RequiredClusterStacks.Count > 0 && !sr.RequiredClusterStacks.Contains(sr.HaClusterStack)
            ? OperationError.Of("INCOMPATIBLE_CLUSTER_STACK_ACTIVE", string.Join(",", sr.RequiredClusterStacks))
            : null;
    }

    /// <summary>
    /// xapi forgets or destroys only an SR whose PBDs are all unplugged. Corral never unplugs a PBD (it has no
    /// PBD.unplug), and forgets or destroys an SR with its PBDs plugged; what must hold instead is what unplugging
    /// ensures in xapi: no VM has one of its disks attached. SR_HAS_PBD still says so, as XenCenter expects it.
    /// Corral's SR.destroy also refuses any VDI left on the SR (xapi: any managed VDI but RRDs).
    /// </summary>
    private static OperationError? Emptiness(SrFacts sr, StorageOperations op)
    {
        if (sr.Vdis.Any(v => v.InUse))
        {
            return OperationError.Of("SR_HAS_PBD", sr.Sr.Ref);
        }

        if (op == Destroy && sr.Pbds == 0)
        {
            return OperationError.Of(ErrorCodes.SrHasNoPbds, sr.Sr.Ref);
        }

        return op == Destroy && sr.Vdis.Count > 0 ? OperationError.Of(ErrorCodes.SrNotEmpty) : null;
    }

    /// <summary>How xapi spells an SR operation inside its errors.</summary>
    public static string Display(StorageOperations op)
    {
        var wire = XenEnum.ToWire(XenEnumTypes.StorageOperations, op);
        return wire switch
        {
            _ when wire.StartsWith("vdi_", StringComparison.Ordinal) => "VDI." + wire[4..],
            _ when wire.StartsWith("pbd_", StringComparison.Ordinal) => "PBD." + wire[4..],
            _ => wire,
        };
    }
}
