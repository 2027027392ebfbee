using Corral.Model;
using static Corral.Model.VdiOperations;

namespace Corral.Api.AllowedOperations;

/// <summary>
/// Which operations a VDI allows, as xapi decides them (xapi_vdi: first failing check wins), with Corral's departures
/// where its storage does less, said where they happen.
/// </summary>
public static class VdiOperationRules
{
    /// <summary>What xapi lists; the others (mirror, CBT, set_on_boot...) are checked only when called.</summary>
    public static readonly IReadOnlyList<VdiOperations> Candidates = [Clone, Copy, Resize, ResizeOnline, Snapshot, Destroy, Forget, Update, GenerateConfig];

    private static readonly HashSet<VdiOperations> RollingUpgradeAllowed = [Clone, Copy, Resize, ResizeOnline, Snapshot, Destroy, Forget, Update, ForceUnlock, GenerateConfig, Blocked];

    private static readonly HashSet<VdiOperations> Live = [Snapshot, ResizeOnline, Blocked, Mirror, EnableCbt, DisableCbt, DataDestroy];

    private static readonly HashSet<VdiOperations> NotForCbtMetadata = [Clone, Copy, DisableCbt, EnableCbt, Mirror, Resize, ResizeOnline, Snapshot, SetOnBoot];

    public static IReadOnlyList<VdiOperations> Allowed(VdiFacts vdi, ImplementedOperations implemented) =>
        Candidates.Where(op => implemented.Has(op) && Check(vdi, op) is null).ToList();

    public static OperationError? Check(VdiFacts vdi, VdiOperations op)
    {
        if (vdi.RollingUpgrade && !RollingUpgradeAllowed.Contains(op))
        {
            return OperationError.Of(ErrorCodes.NotSupportedDuringUpgrade);
        }

        // A copy in progress holds nobody back (the snapshot rule below reacts to it); a destroy may follow a mirror.
        var mirroring = op == Destroy && vdi.CurrentOperations.Contains(Mirror);
        if (!mirroring && vdi.CurrentOperations.First(o => o != Copy) is { } held)
        {
            return OperationError.Of(ErrorCodes.OtherOperationInProgress, XenClasses.VDI, vdi.Ref, Wire(held.Value), held.Key);
        }

        if (op == Resize && !vdi.SrAttached)
        {
            return OperationError.Of(ErrorCodes.SrHasNoPbds, vdi.Sr.Ref);
        }

        return Attachment(vdi, op) ?? Capability(vdi, op) ?? PerOperation(vdi, op);
    }

    private static OperationError? Attachment(VdiFacts vdi, VdiOperations op)
    {
        var active = vdi.Vbds.Where(v => v.Active).ToList();
        var blocked = op switch
        {
            // Corral's clone is a full copy by qemu-img, which cannot read a disk a running VM writes to: it is held
            // back by a writer as a copy is (xapi clones live, through the storage's snapshot).
            Clone or Copy => active.Any(v => v.ReadWrite),
            _ when Live.Contains(op) => false,
            ListChangedBlocks => !active.All(v => v.VmIsASnapshot),
            _ => active.Count > 0,
        };

        // Corral's VDI.destroy leaves the VBDs alone, so it refuses while any VBD (attached or not) points at the VDI.
        if (blocked || (op == Destroy && vdi.Vbds.Count > 0))
        {
            return OperationError.Of(ErrorCodes.VdiInUse, vdi.Ref, Wire(op));
        }

        return op != DataDestroy && vdi.Vbds.FirstOrDefault(v => v.FirstOperation is not null)?.FirstOperation is { } busy
            ? OperationError.Of(ErrorCodes.OtherOperationInProgress, XenClasses.VDI, vdi.Ref, XenEnum.ToWire(XenEnumTypes.VbdOperations, busy.Value), busy.Key)
            : null;
    }

    /// <summary>The SM feature an operation needs, if any.</summary>
    public static string? FeatureFor(VdiOperations op) => op switch
    {
        Clone => "VDI_CLONE",
        Resize => "VDI_RESIZE",
        ResizeOnline => "VDI_RESIZE_ONLINE",
        Snapshot => "VDI_SNAPSHOT",
        Destroy => "VDI_DELETE",
        Update => "VDI_UPDATE",
        GenerateConfig => "VDI_GENERATE_CONFIG",
        Mirror => "VDI_MIRROR",
        EnableCbt or DisableCbt or DataDestroy or ListChangedBlocks => "VDI_CONFIG_CBT",
        SetOnBoot => "VDI_RESET_ON_BOOT",
        _ => null,
    };

    private static OperationError? Capability(VdiFacts vdi, VdiOperations op)
    {
        if (FeatureFor(op) is { } feature && !vdi.Sr.HasFeature(feature))
        {
            return OperationError.Of(ErrorCodes.SrOperationNotSupported, vdi.Sr.Ref);
        }

        if (vdi.Type == VdiType.CbtMetadata && NotForCbtMetadata.Contains(op))
        {
            return OperationError.Of("VDI_INCOMPATIBLE_TYPE", vdi.Ref, "CBT metadata");
        }

        return vdi.CbtEnabled && op is Mirror or SetOnBoot ? OperationError.Of("VDI_CBT_ENABLED", vdi.Ref) : null;
    }

    private static OperationError? PerOperation(VdiFacts vdi, VdiOperations op) => op switch
    {
        Forget when vdi.HaEnabled && vdi.HoldsHaState => OperationError.Of(ErrorCodes.HaIsEnabled),
        Forget when vdi.Type == VdiType.Rrd => OperationError.Of("VDI_HAS_RRDS", vdi.Ref),
        Destroy => DestroyError(vdi),
        DataDestroy when !vdi.IsASnapshot => OperationError.Of(ErrorCodes.OperationNotAllowed, "VDI is not a snapshot: " + vdi.Ref),
        DataDestroy when !vdi.CbtEnabled => OperationError.Of("VDI_NO_CBT_METADATA", vdi.Ref),
        DataDestroy => DestroyError(vdi),
        Resize or ResizeOnline when vdi.HaEnabled && vdi.HoldsHaState => OperationError.Of(ErrorCodes.HaIsEnabled),
        Snapshot when vdi.Sharable => OperationError.Of("VDI_IS_SHARABLE", vdi.Ref),
        Snapshot when vdi.ResetOnBoot => OperationError.Of("VDI_ON_BOOT_MODE_INCOMPATIBLE_WITH_OPERATION"),
        Snapshot when vdi.CurrentOperations.Contains(Copy) => OperationError.Of(ErrorCodes.OperationNotAllowed, "Snapshot operation not allowed during copy."),
        Copy when vdi.ResetOnBoot => OperationError.Of("VDI_ON_BOOT_MODE_INCOMPATIBLE_WITH_OPERATION"),
        Copy when vdi.HoldsHaState => OperationError.Of(ErrorCodes.OperationNotAllowed,
            "VDI containing HA statefile or redo log cannot be copied (check the VDI's allowed operations)."),
        EnableCbt or DisableCbt when vdi.IsASnapshot => OperationError.Of(ErrorCodes.OperationNotAllowed, "VDI is a snapshot: " + vdi.Ref),
        EnableCbt or DisableCbt when vdi.Type is not (VdiType.User or VdiType.System) => OperationError.Of("VDI_INCOMPATIBLE_TYPE", vdi.Ref, TypeDisplay(vdi.Type)),
        EnableCbt or DisableCbt when vdi.ResetOnBoot => OperationError.Of("VDI_ON_BOOT_MODE_INCOMPATIBLE_WITH_OPERATION"),
        _ => null,
    };

    private static OperationError? DestroyError(VdiFacts vdi)
    {
        if (vdi.Sr.Type == "udev")
        {
            return OperationError.Of("VDI_IS_A_PHYSICAL_DEVICE", vdi.Ref);
        }

        if (vdi.Sr.IsToolsSr)
        {
            return OperationError.Of(ErrorCodes.SrOperationNotSupported, vdi.Sr.Ref);
        }

        if (vdi.Type == VdiType.Rrd)
        {
            return OperationError.Of("VDI_HAS_RRDS", vdi.Ref);
        }

        if (vdi.HoldsHaState && vdi.HaEnabled)
        {
            return OperationError.Of(ErrorCodes.HaIsEnabled);
        }

        if (vdi.HoldsHaState && vdi.PoolOperations.Contains(PoolAllowedOperations.HaEnable))
        {
            return OperationError.Of("HA_ENABLE_IN_PROGRESS");
        }

        return vdi.HoldsHaState && vdi.PoolOperations.Contains(PoolAllowedOperations.HaDisable) ? OperationError.Of("HA_DISABLE_IN_PROGRESS") : null;
    }

    /// <summary>How xapi names a VDI type in VDI_INCOMPATIBLE_TYPE.</summary>
    public static string TypeDisplay(VdiType type) => type switch
    {
        VdiType.HaStatefile => "HA statefile",
        VdiType.RedoLog => "Redo log",
        VdiType.PvsCache => "PVS cache",
        VdiType.CbtMetadata => "CBT metadata",
        VdiType.Rrd => "rrd",
        _ => type.ToString(),
    };

    private static string Wire(VdiOperations op) => XenEnum.ToWire(XenEnumTypes.VdiOperations, op);
}
