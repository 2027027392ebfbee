using System.Text.Json;
using System.Text.Json.Serialization;
using Corral.PoolDatabase;

namespace Corral.Api.Migration;

/// <summary>The states of a live migration, in order; <see cref="Aborting"/> may follow any state before completion.</summary>
public static class MigrationStates
{
    /// <summary>Accepted: the destination is to start a QEMU waiting for the VM.</summary>
    public const string Preparing = "preparing";

    /// <summary>The destination's QEMU waits at <see cref="MigrationRecord.DestinationUri"/>.</summary>
    public const string Ready = "ready";

    /// <summary>
    /// Storage migration only: the source's QEMU copies the moving disks into the destination's NBD export and keeps
    /// them in step; the memory follows once every copy has caught up.
    /// </summary>
    public const string Mirroring = "mirroring";

    /// <summary>The source's QEMU is sending.</summary>
    public const string Migrating = "migrating";

    /// <summary>
    /// All but the last device state is across and the VM is stopped on the source (its disk mirrors, if any, completed);
    /// the destination's agent must acknowledge (stopping its disk export first) before QEMU switches over, so a
    /// destination without its agent never receives the VM.
    /// </summary>
    public const string Switching = "switching";

    /// <summary>The destination's agent is there and its QEMU waits: the source lets the switchover happen.</summary>
    public const string SwitchAcknowledged = "switch-ack";

    /// <summary>
    /// The decision: the VM runs on the destination. Written in the same etcd transaction that moves
    /// <c>VM.resident_on</c> and the ownership claim, by whichever side sees the migration finished first.
    /// </summary>
    public const string Completed = "completed";

    /// <summary>The VM stays on the source; the destination's QEMU must go.</summary>
    public const string Aborting = "aborting";
}

/// <summary>
/// One live migration, persisted at <c>/corral/migrations/&lt;vm ref&gt;</c> (one per VM at a time: its existence is
/// the lock). Source and destination agents advance it with guarded writes; either can resume it after a crash.
/// </summary>
public sealed record MigrationRecord
{
    public const string Prefix = PoolKeys.Root + "migrations/";

    public required string Id { get; init; }

    public required string VmRef { get; init; }

    public required string SourceRef { get; init; }

    public required string DestinationRef { get; init; }

    public required string TaskRef { get; init; }

    public string State { get; init; } = MigrationStates.Preparing;

    public string DestinationUri { get; init; } = "";

    /// <summary>The destination host's liveness lease: the VM's ownership claim moves onto it at completion.</summary>
    public long DestinationLease { get; init; }

    public long DestinationDomid { get; init; } = -1;

    public long DowntimeLimitMilliseconds { get; init; } = 300;

    public long MaxBandwidthBytesPerSecond { get; init; }

    public bool AutoConverge { get; init; } = true;

    public string Error { get; init; } = "";

    /// <summary>
    /// When the source let QEMU finish the switchover (<c>migrate-continue</c>), written before it sends it; null
    /// before. It is sent once per migration: a source that resumes its half, in this agent or after a restart, finds
    /// it here and does not send it again.
    /// </summary>
    public DateTime? SwitchoverReleasedUtc { get; init; }

    /// <summary>The disks that move to another SR (storage migration); empty over shared storage.</summary>
    public IReadOnlyList<DiskMove> Disks { get; init; } = [];

    /// <summary>
    /// The source host's TLS identity (<see cref="MigrationPeerIdentity"/>), taken when the migration starts: the only
    /// client the destination's QEMU accepts on its migration port and NBD export. Empty: the source has no TLS
    /// material, and a destination that has some refuses the migration.
    /// </summary>
    public string SourceTlsIdentity { get; init; } = "";

    /// <summary>Where the destination's QEMU serves the moving disks over NBD (<c>host:port</c>), once ready.</summary>
    public string NbdAddress { get; init; } = "";

    public DateTime CreatedUtc { get; init; } = DateTime.UtcNow;

    [JsonIgnore]
    public string Key => KeyOf(VmRef);

    public static string KeyOf(string vmRef) => Prefix + vmRef;

    public string ToJson() => JsonSerializer.Serialize(this, Options);

    public static MigrationRecord FromJson(string json) => JsonSerializer.Deserialize<MigrationRecord>(json, Options) ?? throw new JsonException("empty migration");

    /// <summary>The record and its revision (for a guarded write), or null when there is no migration of the VM.</summary>
    public static async Task<(MigrationRecord Record, long Revision)?> ReadAsync(IPoolDatabase database, string vmRef, CancellationToken cancellationToken)
    {
        var (value, revision) = await database.Leases.GetWithRevisionAsync(KeyOf(vmRef), cancellationToken);
        return value is null ? null : (FromJson(value), revision);
    }

    /// <summary>Writes <paramref name="next"/> if the record is still at <paramref name="revision"/>. False if it moved on.</summary>
    public static async Task<bool> TryAdvanceAsync(IPoolDatabase database, MigrationRecord next, long revision, CancellationToken cancellationToken)
    {
        var tx = new PoolTransaction();
        tx.Require(next.Key, revision);
        tx.PutKey(next.Key, next.ToJson());
        try
        {
            await database.CommitAsync(tx, cancellationToken);
            return true;
        }
        catch (ConcurrentUpdateException)
        {
            return false;
        }
    }

    private static readonly JsonSerializerOptions Options = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
}

/// <summary>
/// One disk of a storage migration: copied live from its VDI into a new VDI on the destination's SR. The new VDI's ref
/// and uuid are chosen up front, so whichever side commits creates the same object; the commit also points the VBD at
/// it and forgets the old VDI, whose file the source deletes afterwards.
/// </summary>
public sealed record DiskMove
{
    public required string VbdRef { get; init; }

    /// <summary>The VBD's userdevice: names the QEMU drive.</summary>
    public required int DiskIndex { get; init; }

    public required string SourceVdiRef { get; init; }

    public required string SourceSrRef { get; init; }

    public required string SourceLocation { get; init; }

    public required string DestinationSrRef { get; init; }

    public required string DestinationVdiRef { get; init; }

    public required string DestinationVdiUuid { get; init; }

    public required long VirtualSize { get; init; }

    /// <summary>The new volume's location in the destination SR, once the destination has made it.</summary>
    public string DestinationLocation { get; init; } = "";
}
