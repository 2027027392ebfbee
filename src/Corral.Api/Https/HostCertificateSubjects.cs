using System.Net;

namespace Corral.Api.Https;

/// <summary>
/// What a host's certificate names, as XenServer's gencert names it: the host's name (or, without one, its address) as
/// the common name, and the host's DNS names and management IP addresses as subject alternative names.
/// </summary>
public sealed record HostCertificateSubjects(string CommonName, IReadOnlyList<string> DnsNames, IReadOnlyList<IPAddress> IpAddresses)
{
    /// <summary>The subjects of a host called <paramref name="hostName"/> and managed at <paramref name="address"/> (an IP address or a DNS name).</summary>
    public static HostCertificateSubjects For(string hostName, string address)
    {
        var dns = new List<string>();
        var ips = new List<IPAddress>();
        foreach (var name in new[] { hostName, address }.Select(n => (n ?? "").Trim().Trim('[', ']')).Where(n => n.Length > 0))
        {
            if (IPAddress.TryParse(name, out var ip))
            {
                if (!ips.Contains(ip))
                {
                    ips.Add(ip);
                }
            }
            else if (!string.Equals(name, "localhost", StringComparison.OrdinalIgnoreCase) && !dns.Contains(name, StringComparer.OrdinalIgnoreCase))
            {
                dns.Add(name);
            }
        }

        if (dns.Count == 0 && ips.Count == 0)
        {
            throw new ArgumentException("A host certificate needs the host's name or address", nameof(hostName));
        }

        return new HostCertificateSubjects(dns.Count > 0 ? dns[0] : ips[0].ToString(), dns, ips);
    }

    /// <summary>Whether a certificate naming these DNS names and addresses names exactly what this host is.</summary>
    public bool SameAs(IEnumerable<string> dnsNames, IEnumerable<IPAddress> ipAddresses) =>
        dnsNames.ToHashSet(StringComparer.OrdinalIgnoreCase).SetEquals(DnsNames) && ipAddresses.ToHashSet().SetEquals(IpAddresses);

    public override string ToString() => string.Join(", ", DnsNames.Concat(IpAddresses.Select(i => i.ToString())));
}
