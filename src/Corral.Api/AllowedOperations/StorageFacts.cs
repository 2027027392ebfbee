using Corral.Model;

namespace Corral.Api.AllowedOperations;

/// <summary>What the VDI and SR rules read about the SR: its type's capabilities and its PBDs.</summary>
public sealed record SrSide
{
    public required string Ref { get; init; }

    public string Type { get; init; } = "";

    public bool IsToolsSr { get; init; }

    /// <summary>
    /// The SM features of the SR's type, as xapi names them (<c>VDI_CREATE</c>, <c>VDI_DELETE</c>...), the tools SR's
    /// create and delete already removed.
    /// </summary>
    public IReadOnlySet<string> Features { get; init; } = new HashSet<string>();

    public bool HasFeature(string feature) => Features.Contains(feature) && !(IsToolsSr && feature is "VDI_CREATE" or "VDI_DELETE");
}

/// <summary>One VBD of a VDI, as the VDI rules see it.</summary>
/// <param name="Active">currently_attached (xapi also counts its internal reserved flag).</param>
/// <param name="FirstOperation">The VBD's first operation in progress, if any.</param>
public sealed record VdiUser(string Vbd, bool Active, bool ReadWrite, bool VmIsASnapshot, KeyValuePair<string, VbdOperations>? FirstOperation = null);

public sealed record VdiFacts
{
    public required string Ref { get; init; }

    public required SrSide Sr { get; init; }

    public VdiType Type { get; init; } = VdiType.User;

    public bool Sharable { get; init; }

    public bool IsASnapshot { get; init; }

    public bool CbtEnabled { get; init; }

    /// <summary><c>on_boot</c> is <c>reset</c>.</summary>
    public bool ResetOnBoot { get; init; }

    public InProgress<VdiOperations> CurrentOperations { get; init; } = InProgress.None<VdiOperations>();

    /// <summary>Some PBD of the SR is currently attached.</summary>
    public bool SrAttached { get; init; } = true;

    /// <summary>Every VBD that points at this VDI.</summary>
    public IReadOnlyList<VdiUser> Vbds { get; init; } = [];

    public bool HaEnabled { get; init; }

    public InProgress<PoolAllowedOperations> PoolOperations { get; init; } = InProgress.None<PoolAllowedOperations>();

    public bool RollingUpgrade { get; init; }

    /// <summary>An HA statefile or redo log, which HA holds.</summary>
    public bool HoldsHaState => Type is VdiType.HaStatefile or VdiType.RedoLog;
}

public sealed record SrFacts
{
    public required SrSide Sr { get; init; }

    public InProgress<StorageOperations> CurrentOperations { get; init; } = InProgress.None<StorageOperations>();

    public int Pbds { get; init; }

    /// <summary>The SR's VDIs, and whether a VBD that is attached uses each.</summary>
    public IReadOnlyList<(string Vdi, bool InUse)> Vdis { get; init; } = [];

    public bool HaEnabled { get; init; }

    /// <summary>The cluster stacks the SR's type requires (any one of them), when it names any.</summary>
    public IReadOnlyList<string> RequiredClusterStacks { get; init; } = [];

    public string HaClusterStack { get; init; } = "";

    public bool RollingUpgrade { get; init; }
}
