using Corral.Api.AllowedOperations;
using Corral.Model;
using Xunit;
using static Corral.Model.VdiOperations;

namespace Corral.UnitTests.AllowedOperations;

/// <summary>VDI and SR rules against xapi's (research: allowed-ops.md §3, §4), and Corral's departures, each named.</summary>
public sealed class StorageOperationRulesTests
{
    private const string VdiRef = "OpaqueRef:vdi";
    private const string SrRef = "OpaqueRef:sr";

    private static readonly HashSet<string> AllFeatures =
        ["VDI_CREATE", "VDI_DELETE", "VDI_RESIZE", "VDI_RESIZE_ONLINE", "VDI_CLONE", "VDI_SNAPSHOT", "VDI_UPDATE", "VDI_GENERATE_CONFIG",
         "VDI_MIRROR", "VDI_CONFIG_CBT", "VDI_RESET_ON_BOOT", "VDI_INTRODUCE", "SR_UPDATE"];

    private static SrSide Sr(IReadOnlySet<string>? features = null) => new() { Ref = SrRef, Type = "file", Features = features ?? AllFeatures };

    private static VdiFacts Vdi(params VdiUser[] vbds) => new() { Ref = VdiRef, Sr = Sr(), Vbds = vbds };

    private static VdiUser User(bool active, bool readWrite = true) => new("OpaqueRef:vbd", active, readWrite, VmIsASnapshot: false);

    private static IReadOnlyList<VdiOperations> Allowed(VdiFacts vdi) => VdiOperationRules.Allowed(vdi, ImplementedOperations.Everything);

    [Fact]
    public void A_free_vdi_lists_everything_its_storage_supports()
    {
        Assert.Equal([Clone, Copy, Resize, ResizeOnline, Snapshot, Destroy, Forget, Update, GenerateConfig], Allowed(Vdi()));
        // Corral's file SRs: create, delete, resize (offline) and clone by copying.
        var file = Vdi() with { Sr = Sr(new HashSet<string> { "VDI_CREATE", "VDI_DELETE", "VDI_RESIZE", "VDI_CLONE" }) };
        Assert.Equal([Clone, Copy, Resize, Destroy, Forget], Allowed(file));
        Assert.Equal([ErrorCodes.SrOperationNotSupported, SrRef], VdiOperationRules.Check(file, Snapshot)!.ToException().ErrorDescription);
    }

    [Fact]
    public void An_attached_vdi_allows_only_live_operations()
    {
        // xapi clones an attached disk live through the storage's snapshot; Corral's clone copies it with qemu-img,
        // which cannot read a disk a running VM writes: refused like copy.
        Assert.Equal([ResizeOnline, Snapshot], Allowed(Vdi(User(active: true))));
        Assert.Equal([Clone, Copy, ResizeOnline, Snapshot], Allowed(Vdi(User(active: true, readWrite: false))));
        Assert.Equal([ErrorCodes.VdiInUse, VdiRef, "resize"], VdiOperationRules.Check(Vdi(User(active: true)), Resize)!.ToException().ErrorDescription);
        Assert.Equal([ErrorCodes.VdiInUse, VdiRef, "clone"], VdiOperationRules.Check(Vdi(User(active: true)), Clone)!.ToException().ErrorDescription);
    }

    [Fact]
    public void Corral_destroys_a_vdi_only_when_no_vbd_points_at_it()
    {
        // xapi only needs the VBDs inactive; Corral's VDI.destroy leaves VBDs alone, so refuses while any is there.
        Assert.Equal([Clone, Copy, Resize, ResizeOnline, Snapshot, Forget, Update, GenerateConfig], Allowed(Vdi(User(active: false))));
        Assert.Equal([ErrorCodes.VdiInUse, VdiRef, "destroy"], VdiOperationRules.Check(Vdi(User(active: false)), Destroy)!.ToException().ErrorDescription);
    }

    [Fact]
    public void Operations_in_progress_on_the_vdi_or_its_vbds()
    {
        var resizing = Vdi() with { CurrentOperations = InProgress.Of(("OpaqueRef:t", Resize)) };
        Assert.Empty(Allowed(resizing));
        Assert.Equal([ErrorCodes.OtherOperationInProgress, "VDI", VdiRef, "resize", "OpaqueRef:t"], VdiOperationRules.Check(resizing, Clone)!.ToException().ErrorDescription);
        // A copy holds nothing back but a snapshot.
        var copying = Vdi() with { CurrentOperations = InProgress.Of(("OpaqueRef:t", Copy)) };
        Assert.Equal([Clone, Copy, Resize, ResizeOnline, Destroy, Forget, Update, GenerateConfig], Allowed(copying));
        Assert.Equal("Snapshot operation not allowed during copy.", VdiOperationRules.Check(copying, Snapshot)!.Parameters[0]);
        var mirroring = Vdi() with { CurrentOperations = InProgress.Of(("OpaqueRef:t", Mirror)) };
        Assert.Null(VdiOperationRules.Check(mirroring, Destroy));
        var attaching = Vdi(User(active: false) with { FirstOperation = new("OpaqueRef:s", VbdOperations.Attach) });
        Assert.Equal([ErrorCodes.OtherOperationInProgress, "VDI", VdiRef, "attach", "OpaqueRef:s"], VdiOperationRules.Check(attaching, Clone)!.ToException().ErrorDescription);
        Assert.Empty(Allowed(attaching));
    }

    [Fact]
    public void Per_operation_rules()
    {
        Assert.Equal([ErrorCodes.SrHasNoPbds, SrRef], VdiOperationRules.Check(Vdi() with { SrAttached = false }, Resize)!.ToException().ErrorDescription);
        Assert.Equal(["VDI_IS_SHARABLE", VdiRef], VdiOperationRules.Check(Vdi() with { Sharable = true }, Snapshot)!.ToException().ErrorDescription);
        Assert.Equal("VDI_ON_BOOT_MODE_INCOMPATIBLE_WITH_OPERATION", VdiOperationRules.Check(Vdi() with { ResetOnBoot = true }, Copy)!.Code);
        Assert.Equal(["VDI_INCOMPATIBLE_TYPE", VdiRef, "CBT metadata"], VdiOperationRules.Check(Vdi() with { Type = VdiType.CbtMetadata }, Clone)!.ToException().ErrorDescription);
        Assert.Equal([Destroy, Forget, Update, GenerateConfig], Allowed(Vdi() with { Type = VdiType.CbtMetadata }));
        Assert.Equal("VDI_CBT_ENABLED", VdiOperationRules.Check(Vdi() with { CbtEnabled = true }, SetOnBoot)!.Code);
        Assert.Equal(["VDI_HAS_RRDS", VdiRef], VdiOperationRules.Check(Vdi() with { Type = VdiType.Rrd }, Forget)!.ToException().ErrorDescription);
        var statefile = Vdi() with { Type = VdiType.HaStatefile, HaEnabled = true };
        Assert.Equal(ErrorCodes.HaIsEnabled, VdiOperationRules.Check(statefile, Destroy)!.Code);
        Assert.Equal(ErrorCodes.HaIsEnabled, VdiOperationRules.Check(statefile, Resize)!.Code);
        Assert.Equal("HA_ENABLE_IN_PROGRESS", VdiOperationRules.Check(statefile with
        {
            HaEnabled = false, PoolOperations = InProgress.Of(("OpaqueRef:p", PoolAllowedOperations.HaEnable)),
        }, Destroy)!.Code);
        Assert.Equal([ErrorCodes.OperationNotAllowed, "VDI is not a snapshot: " + VdiRef], VdiOperationRules.Check(Vdi(), DataDestroy)!.ToException().ErrorDescription);
        Assert.Equal("VDI_NO_CBT_METADATA", VdiOperationRules.Check(Vdi() with { IsASnapshot = true }, DataDestroy)!.Code);
        Assert.Equal(["VDI_INCOMPATIBLE_TYPE", VdiRef, "Suspend"], VdiOperationRules.Check(Vdi() with { Type = VdiType.Suspend }, EnableCbt)!.ToException().ErrorDescription);
        Assert.Equal("NOT_SUPPORTED_DURING_UPGRADE", VdiOperationRules.Check(Vdi() with { RollingUpgrade = true }, Mirror)!.Code);
        Assert.Equal(ErrorCodes.SrOperationNotSupported, VdiOperationRules.Check(Vdi() with { Sr = Sr() with { IsToolsSr = true } }, Destroy)!.Code);
        var list = Vdi(new VdiUser("OpaqueRef:vbd", true, true, VmIsASnapshot: true));
        Assert.Null(VdiOperationRules.Check(list, ListChangedBlocks));
        Assert.NotNull(VdiOperationRules.Check(Vdi(User(active: true)), ListChangedBlocks));
    }

    private static SrFacts SrFacts(params (string, bool)[] vdis) => new() { Sr = Sr(), Pbds = 2, Vdis = vdis };

    private static IReadOnlyList<StorageOperations> Allowed(SrFacts sr) => SrOperationRules.Allowed(sr, ImplementedOperations.Everything);

    [Fact]
    public void An_sr_lists_what_its_storage_supports_and_corral_forgets_plugged_srs()
    {
        // xapi forgets and destroys only SRs whose PBDs are unplugged; Corral has no PBD.unplug, and refuses only while
        // a VM has a disk of the SR attached.
        Assert.Equal(SrOperationRules.Candidates, Allowed(SrFacts()));
        var file = SrFacts(("OpaqueRef:vdi", false)) with { Sr = Sr(new HashSet<string> { "VDI_CREATE", "VDI_DELETE", "VDI_RESIZE", "VDI_CLONE" }) };
        Assert.Equal([StorageOperations.Scan, StorageOperations.Forget, StorageOperations.Plug, StorageOperations.Unplug, StorageOperations.VdiCreate,
            StorageOperations.VdiDestroy, StorageOperations.VdiResize, StorageOperations.VdiClone, StorageOperations.PbdCreate, StorageOperations.PbdDestroy], Allowed(file));
        Assert.Equal([ErrorCodes.SrNotEmpty], SrOperationRules.Check(file, StorageOperations.Destroy)!.ToException().ErrorDescription);
        var inUse = SrFacts(("OpaqueRef:vdi", true));
        Assert.Equal(["SR_HAS_PBD", SrRef], SrOperationRules.Check(inUse, StorageOperations.Forget)!.ToException().ErrorDescription);
        Assert.Equal([ErrorCodes.SrHasNoPbds, SrRef], SrOperationRules.Check(SrFacts() with { Pbds = 0 }, StorageOperations.Destroy)!.ToException().ErrorDescription);
        Assert.Equal([ErrorCodes.SrOperationNotSupported, SrRef], SrOperationRules.Check(file, StorageOperations.VdiSnapshot)!.ToException().ErrorDescription);
    }

    [Fact]
    public void Only_plugs_run_together_on_an_sr()
    {
        var plugging = SrFacts() with { CurrentOperations = InProgress.Of(("OpaqueRef:t", StorageOperations.Plug)) };
        Assert.Equal([StorageOperations.Plug], Allowed(plugging));
        Assert.Equal([ErrorCodes.OtherOperationInProgress, "SR", SrRef, "plug", "OpaqueRef:t"], SrOperationRules.Check(plugging, StorageOperations.Scan)!.ToException().ErrorDescription);
        var creating = SrFacts() with { CurrentOperations = InProgress.Of(("OpaqueRef:t", StorageOperations.VdiCreate)) };
        Assert.Empty(Allowed(creating));
        Assert.Equal("VDI.create", SrOperationRules.Check(creating, StorageOperations.Plug)!.Parameters[2]);
        Assert.Equal("PBD.destroy", SrOperationRules.Display(StorageOperations.PbdDestroy));
    }

    [Fact]
    public void Sr_upgrade_and_cluster_stack_rules()
    {
        Assert.Equal("NOT_SUPPORTED_DURING_UPGRADE", SrOperationRules.Check(SrFacts() with { RollingUpgrade = true }, StorageOperations.VdiMirror)!.Code);
        Assert.Null(SrOperationRules.Check(SrFacts() with { RollingUpgrade = true }, StorageOperations.VdiCreate));
        var clustered = SrFacts() with { HaEnabled = true, RequiredClusterStacks = ["corosync", "xhad"], HaClusterStack = "other" };
        Assert.Equal(["INCOMPATIBLE_CLUSTER_STACK_ACTIVE", "corosync,xhad"], SrOperationRules.Check(clustered, StorageOperations.Plug)!.ToException().ErrorDescription);
        Assert.Null(SrOperationRules.Check(clustered with { HaClusterStack = "xhad" }, StorageOperations.Plug));
    }

    [Fact]
    public void A_tools_sr_neither_creates_nor_deletes()
    {
        var tools = SrFacts() with { Sr = Sr() with { IsToolsSr = true } };
        Assert.NotNull(SrOperationRules.Check(tools, StorageOperations.VdiCreate));
        Assert.NotNull(SrOperationRules.Check(tools, StorageOperations.VdiDestroy));
        Assert.Null(SrOperationRules.Check(tools, StorageOperations.VdiResize));
    }
}
