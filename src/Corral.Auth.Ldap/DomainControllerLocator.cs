using System.Net;
using Corral.Api.Auth;
using DnsClient;
using DnsClient.Protocol;
using Microsoft.Extensions.Options;

namespace Corral.Auth.Ldap;

/// <summary>Where DNS is asked for a domain's controllers (section <c>Corral:Auth:ActiveDirectory</c>).</summary>
public sealed class ActiveDirectoryOptions
{
    /// <summary>Name servers to ask (addresses); empty: the host's own (/etc/resolv.conf), as winbind asks them.</summary>
    public List<string> NameServers { get; } = [];
}

/// <summary>A domain controller to connect to: the name its certificate carries, and where to reach it.</summary>
public sealed record DomainController(string Name, string Address, int Port);

/// <summary>
/// Finds a domain's controllers as Windows and winbind do: DNS's SRV records <c>_ldap._tcp.dc._msdcs.&lt;domain&gt;</c>
/// (by priority, then weight), each name resolved by the same name servers; or the ones the pool's configuration names
/// (<c>domain-controllers</c>). Through DnsClient.
/// </summary>
public sealed class DomainControllerLocator(IOptions<ActiveDirectoryOptions> options)
{
    internal async Task<IReadOnlyList<DomainController>> FindAsync(AdSettings ad, CancellationToken cancellationToken)
    {
        var lookup = Client();
        if (ad.DomainControllers.Count > 0)
        {
            var named = new List<DomainController>();
            foreach (var endpoint in ad.DomainControllers)
            {
                var host = AdSettings.HostOf(endpoint);
                named.Add(new DomainController(host, await AddressOfAsync(lookup, host, cancellationToken) ?? host, AdSettings.PortOf(endpoint) ?? AdSettings.LdapsPort));
            }

            return named;
        }

        IDnsQueryResponse answer;
        try
        {
            answer = await lookup.QueryAsync($"_ldap._tcp.dc._msdcs.{ad.Domain}", QueryType.SRV, cancellationToken: cancellationToken);
        }
        catch (DnsResponseException ex)
        {
            throw new DirectoryUnavailableException($"DNS could not be asked for the domain controllers of {ad.Domain}: {ex.Message}", inner: ex,
                errorCode: Model.ErrorCodes.PoolAuthEnableFailedDomainLookupFailed);
        }

        var found = new List<DomainController>();
        foreach (var srv in answer.Answers.SrvRecords().OrderBy(r => r.Priority).ThenByDescending(r => r.Weight))
        {
            var name = srv.Target.Value.TrimEnd('.');
            var address = answer.Additionals.ARecords().FirstOrDefault(a => a.DomainName.Value.TrimEnd('.').Equals(name, StringComparison.OrdinalIgnoreCase))?.Address.ToString()
                ?? await AddressOfAsync(lookup, name, cancellationToken);
            if (address is not null)
            {
                found.Add(new DomainController(name, address, AdSettings.LdapsPort));
            }
        }

        return found.Count > 0 ? found : throw new DirectoryUnavailableException(
            $"DNS names no domain controller of {ad.Domain} (_ldap._tcp.dc._msdcs.{ad.Domain} SRV); point the hosts' DNS at the domain's, or name them in config:{AdSettings.DomainControllersKey}",
            errorCode: Model.ErrorCodes.PoolAuthEnableFailedDomainLookupFailed);
    }

    private LookupClient Client()
    {
        var servers = options.Value.NameServers.Select(IPAddress.Parse).ToArray();
        var settings = servers.Length > 0 ? new LookupClientOptions(servers) : new LookupClientOptions();
        settings.Timeout = TimeSpan.FromSeconds(3);
        settings.Retries = 1;
        settings.UseCache = false;
        return new LookupClient(settings);
    }

    private static async Task<string?> AddressOfAsync(LookupClient lookup, string host, CancellationToken cancellationToken)
    {
        if (IPAddress.TryParse(host, out _))
        {
            return host;
        }

        try
        {
            var answer = await lookup.QueryAsync(host, QueryType.A, cancellationToken: cancellationToken);
            return answer.Answers.ARecords().FirstOrDefault()?.Address.ToString();
        }
        catch (DnsResponseException)
        {
            return null;
        }
    }
}
