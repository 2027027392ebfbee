namespace Corral.PoolDatabase.Etcd.Membership;

/// <summary>
/// This host's own etcd member (section <c>Corral:Etcd:Member</c>). When enabled, the agent runs the member itself,
/// because joining, leaving and recovering a pool means restarting it with a new cluster configuration.
/// </summary>
public sealed class EtcdMemberOptions
{
    public bool Enabled { get; set; }

    public string Executable { get; set; } = "etcd";

    /// <summary>etcd's command-line client (Debian's etcd-client), for restoring the member's database after a lost quorum.</summary>
    public string EtcdctlExecutable { get; set; } = "etcdctl";

    /// <summary>The member's name in the cluster (the host's name).</summary>
    public string Name { get; set; } = Environment.MachineName;

    public string DataDirectory { get; set; } = "/var/lib/corral/etcd";

    /// <summary>The URL other members reach this one at (<c>https://address:2380</c>): TLS, peers authenticated by the pool's CA.</summary>
    public string PeerUrl { get; set; } = "https://127.0.0.1:2380";

    /// <summary>The client URL other hosts reach this member at (<c>https://address:2379</c>): TLS, clients authenticated by the pool's CA.</summary>
    public string ClientUrl { get; set; } = "https://127.0.0.1:2379";

    /// <summary>Where the member listens for clients: its client URL and, for this host's agent, loopback.</summary>
    public string ListenClientUrls { get; set; } = "";

    /// <summary>
    /// How much of the pool database's history the member keeps (etcd's periodic auto-compaction): older revisions are
    /// compacted away, so the database grows with what the pool holds, not with every write it ever took. A watch or an
    /// <c>event.from</c> token older than this gets <c>EVENTS_LOST</c> and starts afresh, as xapi's event queue does.
    /// Whole minutes, at least 5.
    /// </summary>
    public TimeSpan HistoryRetention { get; set; } = TimeSpan.FromHours(1);

    /// <summary>
    /// The member's space quota (<c>--quota-backend-bytes</c>); past it etcd raises its NOSPACE alarm and refuses
    /// writes. etcd's own default, 2 GiB, at least 64 MiB.
    /// </summary>
    public long QuotaBytes { get; set; } = 2L * 1024 * 1024 * 1024;

    /// <summary>
    /// How often the etcd leader heartbeats its followers (<c>--heartbeat-interval</c>): about the members' round trip
    /// and fsync time. 50 ms, half etcd's default, suits hosts on one LAN.
    /// </summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromMilliseconds(50);

    /// <summary>
    /// How long a follower goes without the leader's heartbeat before it stands for election (<c>--election-timeout</c>).
    /// It counts twice when the etcd leader's host dies: the election waits it out, then the new leader extends every
    /// lease by it (it cannot know when the old one last renewed them). So it is part of how soon a dead master's VMs
    /// come back (docs/ha.md). 500 ms, half etcd's default: ten heartbeats, as etcd's tuning guide asks; every
    /// member of a pool must use the same.
    /// </summary>
    public TimeSpan ElectionTimeout { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>What is wrong with these settings, each naming its setting; empty when they are usable.</summary>
    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (HistoryRetention < TimeSpan.FromMinutes(5) || HistoryRetention.Ticks % TimeSpan.TicksPerMinute != 0)
        {
            problems.Add($"Corral:Etcd:Member:HistoryRetention ({HistoryRetention}) must be whole minutes, at least 5: clients following events need the history since their last call");
        }

        if (HeartbeatInterval < TimeSpan.FromMilliseconds(10) || ElectionTimeout < 5 * HeartbeatInterval || ElectionTimeout > TimeSpan.FromSeconds(50))
        {
            problems.Add($"Corral:Etcd:Member:HeartbeatInterval ({HeartbeatInterval.TotalMilliseconds} ms) must be at least 10 ms and "
                + $"Corral:Etcd:Member:ElectionTimeout ({ElectionTimeout.TotalMilliseconds} ms) at least five heartbeats and at most 50 s (etcd's own limits)");
        }

        // The pool database holds the pool secret, password hashes and session references: never on the wire in the clear,
        // never open to a client that has no certificate of the pool's CA.
        foreach (var (setting, url) in new[] { ("PeerUrl", PeerUrl), ("ClientUrl", ClientUrl) })
        {
            if (Enabled && !url.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
            {
                problems.Add($"Corral:Etcd:Member:{setting} ({url}) must be an https URL: the agent runs its etcd member on TLS only");
            }
        }

        if (QuotaBytes < 64L * 1024 * 1024)
        {
            problems.Add($"Corral:Etcd:Member:QuotaBytes ({QuotaBytes}) must be at least 64 MiB");
        }

        return problems;
    }

    public string PidFile => DataDirectory.TrimEnd('/') + ".pid";

    public string LogFile => DataDirectory.TrimEnd('/') + ".log";

    public string MembershipFile => DataDirectory.TrimEnd('/') + ".membership.json";

    public string EffectiveListenClientUrls =>
        ListenClientUrls.Length > 0 ? ListenClientUrls
        : ClientUrl.Contains("127.0.0.1", StringComparison.Ordinal) ? ClientUrl : $"{ClientUrl},{new Uri(ClientUrl).Scheme}://127.0.0.1:2379";
}
