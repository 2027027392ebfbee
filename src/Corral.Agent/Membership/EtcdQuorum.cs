using System.Globalization;
using Corral.Agent.Hosting;
using Corral.Api.Methods;
using Corral.Model;
using Corral.PoolDatabase;
using Corral.PoolDatabase.Etcd;
using Corral.PoolDatabase.Etcd.Membership;
using Corral.PoolDatabase.Etcd.Tls;
using Microsoft.Extensions.Options;

namespace Corral.Agent.Membership;

/// <summary>
/// Whether this host's etcd member may stop (<c>host.shutdown</c>, <c>host.reboot</c>) without taking the pool
/// database's quorum with it. A planned power-off must not do what an unplanned one can: with two voters left of
/// three, one more gone would leave the other hosts without a pool database (and, with HA on, fencing themselves).
/// </summary>
public sealed class EtcdQuorum(
    EtcdPoolDatabase database,
    HostIdentity identity,
    Placement placement,
    IOptions<EtcdOptions> options,
    ILogger<EtcdQuorum> logger)
{
    /// <summary>
    /// Why stopping this host's member would lose the quorum, or null when it would not: this host runs no voting
    /// member, no other host is live (a pool of one going down takes nobody's database away), or enough other voters
    /// answer.
    /// </summary>
    public async Task<string?> LossIfStoppedAsync(CancellationToken cancellationToken)
    {
        var member = options.Value.Member;
        if (!member.Enabled || EtcdMembership.Load(member.MembershipFile) is not { Role: EtcdRole.Voter })
        {
            return null;
        }

        var others = 0;
        foreach (var host in await database.GetAllAsync(XenClasses.Host, cancellationToken))
        {
            if (host.Ref != identity.Ref && await placement.IsLiveAsync(host, cancellationToken))
            {
                others++;
            }
        }

        var voters = (await database.CreateClusterAdmin(logger).ListAsync(cancellationToken)).Where(m => !m.IsLearner).ToList();
        var up = 0;
        foreach (var voter in voters.Where(v => v.Name != member.Name && !v.PeerUrls.Contains(member.PeerUrl)))
        {
            if (await AnswersAsync(voter.ClientUrls, cancellationToken))
            {
                up++;
            }
        }

        return Verdict(voters.Count, up, others);
    }

    /// <summary>The rule: with other live hosts, the other voters that answer must still make a majority of all voters.</summary>
    public static string? Verdict(int voters, int otherVotersUp, int otherLiveHosts)
    {
        var majority = voters / 2 + 1;
        if (otherLiveHosts == 0 || otherVotersUp >= majority)
        {
            return null;
        }

        return string.Create(CultureInfo.InvariantCulture,
            $"Stopping this host's etcd member would leave the pool database without a quorum: {otherVotersUp} of its {voters} voting members would remain, {majority} are needed. Bring the other hosts back first (or eject this one).");
    }

    /// <summary>
    /// A member is up if any of its client URLs answers etcd's health check at all; over TLS this host presents its
    /// certificate (the member refuses the handshake otherwise, which would count it down).
    /// </summary>
    private async Task<bool> AnswersAsync(IReadOnlyList<string> clientUrls, CancellationToken cancellationToken)
    {
        var certificates = options.Value.CertificateDirectory;
        using var http = new HttpClient(clientUrls.Any(u => u.StartsWith("https://", StringComparison.OrdinalIgnoreCase)) && certificates.Length > 0
            ? new EtcdTlsFiles(certificates).CreateHttpHandler() : new SocketsHttpHandler())
        {
            Timeout = TimeSpan.FromSeconds(2),
        };
        foreach (var url in clientUrls)
        {
            try
            {
                using var response = await http.GetAsync(url.TrimEnd('/') + "/health", cancellationToken);
                return true;
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
            {
                logger.LogDebug("etcd member at {Url} does not answer: {Reason}", url, ex.Message);
            }
        }

        return false;
    }
}
