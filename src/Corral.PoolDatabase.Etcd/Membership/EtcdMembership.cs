using System.Text.Json;
using System.Text.Json.Serialization;

namespace Corral.PoolDatabase.Etcd.Membership;

/// <summary>How this host takes part in the pool database.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<EtcdRole>))]
public enum EtcdRole
{
    /// <summary>A voting member: its agent talks to its own member first, the other voters when that one is down.</summary>
    Voter,

    /// <summary>A non-voting member (a replica kept in sync); its agent talks to the voters.</summary>
    Learner,

    /// <summary>No member here; the agent talks to the voters.</summary>
    Client,
}

/// <summary>
/// This host's place in the etcd cluster, kept next to the member's data directory: the role, the client endpoints
/// the agent uses, and the cluster the member was started in. Absent on a host that has never joined a pool.
/// </summary>
public sealed record EtcdMembership(EtcdRole Role, IReadOnlyList<string> Endpoints, string InitialCluster, ulong MemberId)
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    public static EtcdMembership? Load(string path) =>
        File.Exists(path) ? JsonSerializer.Deserialize<EtcdMembership>(File.ReadAllText(path), Json) : null;

    public void Save(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var temporary = path + ".tmp";
        File.WriteAllText(temporary, JsonSerializer.Serialize(this, Json));
        File.Move(temporary, path, overwrite: true);
    }
}
