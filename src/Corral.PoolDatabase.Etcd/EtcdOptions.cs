namespace Corral.PoolDatabase.Etcd;

public sealed class EtcdOptions
{
    /// <summary>
    /// Client endpoints, comma separated (<c>https://10.0.0.1:2379,https://10.0.0.2:2379</c>). With https, this host's
    /// certificate in <see cref="CertificateDirectory"/> is presented and the members' are checked against its pool's CA.
    /// </summary>
    public string Endpoints { get; set; } = "https://127.0.0.1:2379";

    /// <summary>
    /// This host's pool CA and etcd certificate (<see cref="Tls.EtcdTlsFiles"/>); the agent's default is
    /// <c>etcd-tls</c> in its state directory. Empty: https endpoints are checked against the system's CAs, with no
    /// client certificate (an etcd Corral does not run).
    /// </summary>
    public string CertificateDirectory { get; set; } = "";

    /// <summary>How long one etcd request may take before it is abandoned.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Margin taken off a lease's TTL for clock drift between this host and the etcd leader. The agent sets it from HA's
    /// timing budget (<c>Corral:Ha:LeaseSafetyMargin</c>), where it is checked with the TTL.
    /// </summary>
    public TimeSpan LeaseSafetyMargin { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>This host's own etcd member, when the agent runs it.</summary>
    public Membership.EtcdMemberOptions Member { get; set; } = new();

    /// <summary>What is wrong with these settings (the member's included), each naming its setting; empty when usable.</summary>
    public IReadOnlyList<string> Problems()
    {
        var problems = Member.Problems().ToList();
        if (Member.Enabled && Endpoints.Split(',', StringSplitOptions.RemoveEmptyEntries).Any(e => !e.Trim().StartsWith("https://", StringComparison.OrdinalIgnoreCase)))
        {
            problems.Add($"Corral:Etcd:Endpoints ({Endpoints}) must be https URLs: this host's etcd member serves TLS only");
        }

        return problems;
    }
}
