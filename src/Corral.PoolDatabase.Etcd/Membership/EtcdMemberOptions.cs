namespace Corral.PoolDatabase.Etcd.Membership;

/// <summary>
/// This host's own etcd member (section <c>Corral:Etcd:Member</c>). When enabled, the agent runs the member itself,
/// because joining, leaving and recovering a pool means restarting it with a new cluster configuration.
/// </summary>
public sealed class EtcdMemberOptions
{
    public bool Enabled { get; set; }

    public string Executable { get; set; } = "etcd";

    /// <summary>The member's name in the cluster (the host's name).</summary>
    public string Name { get; set; } = Environment.MachineName;

    public string DataDirectory { get; set; } = "/var/lib/corral/etcd";

    /// <summary>The URL other members reach this one at (<c>http://address:2380</c>).</summary>
    public string PeerUrl { get; set; } = "http://127.0.0.1:2380";

    /// <summary>The client URL other hosts reach this member at (<c>http://address:2379</c>).</summary>
    public string ClientUrl { get; set; } = "http://127.0.0.1:2379";

    /// <summary>Where the member listens for clients: its client URL and, for this host's agent, loopback.</summary>
    public string ListenClientUrls { get; set; } = "";

    public string PidFile => DataDirectory.TrimEnd('/') + ".pid";

    public string LogFile => DataDirectory.TrimEnd('/') + ".log";

    public string MembershipFile => DataDirectory.TrimEnd('/') + ".membership.json";

    public string EffectiveListenClientUrls =>
        ListenClientUrls.Length > 0 ? ListenClientUrls
        : ClientUrl.Contains("127.0.0.1", StringComparison.Ordinal) ? ClientUrl : ClientUrl + ",http://127.0.0.1:2379";
}
