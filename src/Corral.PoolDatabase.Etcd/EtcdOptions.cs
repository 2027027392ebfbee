namespace Corral.PoolDatabase.Etcd;

public sealed class EtcdOptions
{
    /// <summary>Client endpoints, comma separated (<c>http://10.0.0.1:2379,http://10.0.0.2:2379</c>).</summary>
    public string Endpoints { get; set; } = "http://127.0.0.1:2379";

    /// <summary>How long one etcd request may take before it is abandoned.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Margin taken off a lease's TTL for clock drift between this host and the etcd leader. The agent sets it from HA's
    /// timing budget (<c>Corral:Ha:LeaseSafetyMargin</c>), where it is checked with the TTL.
    /// </summary>
    public TimeSpan LeaseSafetyMargin { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>This host's own etcd member, when the agent runs it.</summary>
    public Membership.EtcdMemberOptions Member { get; set; } = new();
}
