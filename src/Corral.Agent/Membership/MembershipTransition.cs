using System.Text.Json;
using System.Text.Json.Serialization;
using Corral.Api.Pool;
using Corral.PoolDatabase.Etcd.Membership;
using Corral.PoolDatabase.Etcd.Tls;

namespace Corral.Agent.Membership;

[JsonConverter(typeof(JsonStringEnumConverter<MembershipChange>))]
public enum MembershipChange
{
    /// <summary>Become a member of a master's cluster (pool.join, pool.emergency_reset_master).</summary>
    Join,

    /// <summary>Leave the cluster and start a pool of one afresh (pool.eject).</summary>
    Leave,

    /// <summary>A one-member cluster restored from this host's own copy (pool.emergency_transition_to_master; see StandaloneRestore).</summary>
    ForceNewCluster,
}

/// <summary>
/// A change to this host's etcd membership, persisted before any step runs and advanced stage by stage, so an agent
/// that dies half-way resumes it on its next start. It lives on the host's disk, not in etcd, because it is the
/// host's link to etcd that is changing. A join carries the pool's host certificates, read from its master, which
/// this host checks the master against until its own pool database has them, and the pool's CA with this host's
/// certificate signed by it, installed when the member stops (the old ones serve it until then). The file is the
/// owner's alone (0600): it holds the pool secret and the CA's key.
/// </summary>
public sealed record MembershipTransition(
    MembershipChange Change,
    int Stage,
    EtcdRole Role = EtcdRole.Client,
    ulong MemberId = 0,
    string InitialCluster = "",
    IReadOnlyList<string>? Endpoints = null,
    string MasterAddress = "",
    string PoolSecret = "",
    IReadOnlyList<PoolHostCertificate>? PoolCertificates = null,
    PoolTlsMaterial? Tls = null)
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    public static MembershipTransition? Load(string path) =>
        File.Exists(path) ? JsonSerializer.Deserialize<MembershipTransition>(File.ReadAllText(path), Json) : null;

    public void Save(string path) => Corral.Platform.PrivateFile.Replace(path, stream => JsonSerializer.Serialize(stream, this, Json));
}
